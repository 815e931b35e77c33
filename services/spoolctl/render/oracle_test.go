package render_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/spoolctl/render"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDistributedEqualsOracle: a job run by the dispatcher, a worker with
// two ref slots and the stitcher decodes to exactly the frames of
// `spoolctl render --local` of the same spec (framemd5), in chain and in
// independent mode.
func TestDistributedEqualsOracle(t *testing.T) {
	st := devstacktest.Require(t, devstacktest.NATS, devstacktest.Postgres, devstacktest.MinIO)
	ctx := context.Background()
	b, err := bus.Connect(ctx, config.NATS{URL: st.NATSURL})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bl, err := blob.New(config.S3{Endpoint: st.S3Endpoint, AccessKey: st.S3AccessKey, SecretKey: config.Secret(st.S3SecretKey), Bucket: st.S3Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if err := bl.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	pool := "oracle"
	d, err := dispatcher.New(ctx, dispatcher.Config{Pools: []string{pool}, MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond,
		ReconcileEvery: time.Hour, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 16, LiveAhead: 2, OutboxBatch: 64,
		SubmitBatch: 16, SegmentDeadline: time.Minute}, b, s, quiet())
	if err != nil {
		t.Fatal(err)
	}
	sti, err := stitcher.New(stitcher.Config{ID: "oracle", PartSize: blob.MinPartSize, OpenJobs: 4, Parallel: 4, Lease: 5 * time.Second,
		LiveWindow: 3, Codec: "h264", Sweep: time.Second}, b, s, bl, quiet())
	if err != nil {
		t.Fatal(err)
	}
	wk, err := worker.New(worker.Config{ID: "oracle", Pool: pool, Backend: "ref", Slots: 2, Heartbeat: time.Second}, b, bl, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer wk.Close()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 3)
	for _, run := range []func(context.Context) error{d.Run, sti.Run, wk.Run} {
		go func() { _ = run(runCtx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range 3 {
			<-done
		}
	}()
	for _, c := range []struct{ id, mode string }{{"oracle-chain", "MODE_CHAIN"}, {"oracle-indep", "MODE_INDEPENDENT"}} {
		t.Run(c.mode, func(t *testing.T) {
			spec := `{"id":"` + c.id + `","prompt":"a lighthouse at dusk","mode":"` + c.mode + `","durationFrames":40,` +
				`"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":3,"seed":7,"fps":24,"pool":"` + pool + `"}`
			m := nats.NewMsg(bus.SubjectJobSubmit)
			m.Data = []byte(spec)
			m.Header.Set(bus.HeaderContentType, bus.ContentJSON)
			if _, err := b.JetStream().PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			local := filepath.Join(dir, "local.mp4")
			h := nats.Header{}
			h.Set(bus.HeaderContentType, bus.ContentJSON)
			js, err := bus.DecodeJobSpec([]byte(spec), h)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := render.Render(ctx, js, &out, render.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_ = os.WriteFile(local, out.Bytes(), 0o644)
			j := waitSucceeded(t, s, c.id)
			r, _, err := bl.Get(ctx, blob.Key(j.FinalKey))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(r)
			r.Close()
			dist := filepath.Join(dir, "distributed.mp4")
			_ = os.WriteFile(dist, data, 0o644)
			want, err := media.FrameMD5(ctx, local, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := media.FrameMD5(ctx, dist, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != 40 || res.Frames != 40 || !slices.Equal(got, want) {
				t.Fatalf("distributed %d frames, oracle %d (%d rendered); first difference at %d", len(got), len(want), res.Frames, firstDiff(got, want))
			}
			if !bytes.Equal(data, out.Bytes()) {
				t.Logf("same frames; the files differ in bytes (%d vs %d)", len(data), out.Len())
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func waitSucceeded(t *testing.T, s *store.Store, id string) store.Job {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		j, err := s.GetJob(context.Background(), id)
		if err == nil && j.State == store.JobSucceeded {
			return j
		}
		if err == nil && j.State.Terminal() {
			t.Fatalf("job %s %s: %s", id, j.State, j.ErrorMessage)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("job %s did not succeed", id)
	return store.Job{}
}

