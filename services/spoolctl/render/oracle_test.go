package render_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/spoolctl/render"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// system is the whole system on the real stack.
type system struct{ *systest.System }

const pool = systest.Pool

func newSystem(t *testing.T, ackWait time.Duration, slots int) *system {
	return &system{systest.Start(t, ackWait, slots)}
}

func (sys *system) submit(t *testing.T, spec string) {
	t.Helper()
	m := nats.NewMsg(bus.SubjectJobSubmit)
	m.Data = []byte(spec)
	m.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	if _, err := sys.Bus.JetStream().PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// compare checks that job id's final MP4 decodes to the frames of the
// oracle's render of spec.
func (sys *system) compare(t *testing.T, id, spec string, frames int) {
	t.Helper()
	sys.compareWith(t, id, spec, frames, render.Options{}, 60*time.Second)
}

// compareWith is compare with the oracle's engine set up by o (as the
// workers set up theirs), waiting up to within for the job.
func (sys *system) compareWith(t *testing.T, id, spec string, frames int, o render.Options, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	local := filepath.Join(dir, "local.mp4")
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentJSON)
	js, err := bus.DecodeJobSpec([]byte(spec), h)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := render.Render(ctx, js, &out, o)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(local, out.Bytes(), 0o644)
	j := waitSucceededWithin(t, sys.Store, id, within)
	r, _, err := sys.Blob.Get(ctx, blob.Key(j.FinalKey))
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
	if len(want) != frames || res.Frames != int64(frames) || !slices.Equal(got, want) {
		t.Fatalf("distributed %d frames, oracle %d (%d rendered); first difference at %d", len(got), len(want), res.Frames, firstDiff(got, want))
	}
}

// TestDistributedEqualsOracle: a job run by the dispatcher, a worker with
// two ref slots and the stitcher decodes to exactly the frames of
// `spoolctl render --local` of the same spec (framemd5), in chain and in
// independent mode, and with prompts that change over the video (cues at
// frames 18 and 29, landing on the boundaries 22 and 31).
func TestDistributedEqualsOracle(t *testing.T) {
	sys := newSystem(t, 0, 2)
	const one, travel = `"prompt":"a lighthouse at dusk"`, `"timeline":[{"fromS":0,"prompt":"a lighthouse at dusk"},` +
		`{"fromS":0.75,"prompt":"a stormy sea at night"},{"fromS":1.2,"prompt":"dawn over a calm sea"}]`
	for _, c := range []struct{ id, mode, prompts string }{{"oracle-chain", "MODE_CHAIN", one}, {"oracle-indep", "MODE_INDEPENDENT", one},
		{"oracle-travel", "MODE_CHAIN", travel}, {"oracle-travel-indep", "MODE_INDEPENDENT", travel}} {
		t.Run(c.id, func(t *testing.T) {
			spec := `{"id":"` + c.id + `",` + c.prompts + `,"mode":"` + c.mode + `","durationFrames":40,` +
				`"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":3,"seed":7,"fps":24,"pool":"` + pool + `"}`
			sys.submit(t, spec)
			sys.compare(t, c.id, spec, 40)
		})
	}
}

// startWorkerProcess starts the spool-worker binary bin with env added to
// the test's environment, and kills it when the test ends, printing the end
// of its output if the test failed.
func startWorkerProcess(t *testing.T, bin, name string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if b := logs.Bytes(); t.Failed() && len(b) > 0 {
			t.Logf("worker %s:\n%s", name, b[max(0, len(b)-8000):])
		}
	})
	return cmd
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
	return waitSucceededWithin(t, s, id, 60*time.Second)
}

func waitSucceededWithin(t *testing.T, s *store.Store, id string, within time.Duration) store.Job {
	t.Helper()
	deadline := time.Now().Add(within)
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
