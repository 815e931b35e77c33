package chaos

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/spoolctl/render"
)

// oracleParallel is how many jobs are rendered and compared at once.
const oracleParallel = 2

// checkFrames: every succeeded job's final video decodes to exactly the
// frames of `spoolctl render --local` of its spec with the same files
// (framemd5 of every frame), as many as it planned.
func checkFrames(ctx context.Context, dir string, bl *blob.Store, jobs []*job, ls map[string]*lineage) Check {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Check{Name: "frames equal the oracle's", Detail: err.Error()}
	}
	var (
		mu     sync.Mutex
		bad    []string
		frames int
		wg     sync.WaitGroup
		sem    = make(chan struct{}, oracleParallel)
	)
	for _, j := range jobs {
		l := ls[j.ID]
		if l.job.State != store.JobSucceeded {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := compareJob(ctx, dir, bl, j, l.job)
			mu.Lock()
			defer mu.Unlock()
			frames += n
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s (%s): %v", j.ID, j.Kind, err))
			}
		}()
	}
	wg.Wait()
	return verdict("frames equal the oracle's", fmt.Sprintf("%d frames of %d videos, decoded, bit-identical", frames, len(jobs)), bad)
}

// compareJob renders j locally and compares its decoded frames with those
// of the job's final video; it returns the frames compared.
func compareJob(ctx context.Context, dir string, bl *blob.Store, j *job, jb store.Job) (int, error) {
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentJSON)
	spec, err := bus.DecodeJobSpec([]byte(j.Spec), h)
	if err != nil {
		return 0, err
	}
	local, dist := filepath.Join(dir, j.ID+".oracle.mp4"), filepath.Join(dir, j.ID+".final.mp4")
	f, err := os.Create(local)
	if err != nil {
		return 0, err
	}
	_, err = render.Render(ctx, spec, f, j.oracle)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("render --local: %w", err)
	}
	if err := download(ctx, bl, jb.FinalKey, dist); err != nil {
		return 0, err
	}
	want, err := media.FrameMD5(ctx, local, "")
	if err != nil {
		return 0, err
	}
	got, err := media.FrameMD5(ctx, dist, "")
	if err != nil {
		return 0, err
	}
	if !slices.Equal(got, want) || int64(len(want)) != jb.TotalFrames {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		return 0, fmt.Errorf("%d frames decoded, the oracle's %d, planned %d; first difference at frame %d (%s, %s)",
			len(got), len(want), jb.TotalFrames, i, dist, local)
	}
	_ = os.Remove(local)
	_ = os.Remove(dist)
	return len(got), nil
}

func download(ctx context.Context, bl *blob.Store, key, path string) error {
	r, _, err := bl.Get(ctx, blob.Key(key))
	if err != nil {
		return fmt.Errorf("final video %s: %w", key, err)
	}
	defer r.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("final video %s: %w", key, err)
	}
	return f.Close()
}
