package worker_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

// ackWait is the tests' AckWait: a killed worker's task comes back after it.
const ackWait = 3 * time.Second

type env struct {
	st    *devstack.Stack
	bus   *bus.Bus
	blob  *blob.Store
	store *store.Store
	pool  string
}

func newEnv(t *testing.T) *env {
	c := devstacktest.Connect(t, ackWait)
	pool := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return &env{st: c.Stack, bus: c.Bus, blob: c.Blob, store: c.Store, pool: pool}
}

func (e *env) run(t *testing.T, name string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// startDispatcher runs a dispatcher for the test's pool; tune, if given,
// changes its configuration first.
func (e *env) startDispatcher(t *testing.T, tune ...func(*dispatcher.Config)) {
	cfg := dispatcher.Config{Pools: e.pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond, ReconcileEvery: time.Hour,
		RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 8, LiveAhead: 2, OutboxBatch: 64, SubmitBatch: 16, SegmentDeadline: time.Minute}
	for _, f := range tune {
		f(&cfg)
	}
	d, err := dispatcher.New(context.Background(), cfg, e.bus, e.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.run(t, "dispatcher", d.Run)
}

// startWorker starts a worker serving the pool's models, ref and sim.
func (e *env) startWorker(t *testing.T, slots int) {
	e.startWorkerOf(t, slots, "ref", "sim")
}

// startWorkerOf starts a worker w-<pool> that loads models.
func (e *env) startWorkerOf(t *testing.T, slots int, models ...string) {
	w, err := worker.New(worker.Config{ID: "w-" + e.pool, Pool: e.pool, Models: models, Slots: slots, Heartbeat: time.Second},
		e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	e.run(t, "worker", w.Run)
}

func (e *env) submit(t *testing.T, spec string) string {
	msg := nats.NewMsg(bus.SubjectJobSubmit)
	msg.Data = []byte(spec)
	msg.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	if _, err := e.bus.JetStream().PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.Split(spec, `"id":"`)[1], `"`)[0]
}

func (e *env) waitDone(t *testing.T, id string) []store.Segment {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		segs, _ := e.store.ListSegments(context.Background(), id)
		done := 0
		for _, s := range segs {
			if s.State == store.SegDone {
				done++
			}
		}
		if len(segs) > 0 && done == len(segs) {
			return segs
		}
		if j, err := e.store.GetJob(context.Background(), id); err == nil && j.State.Terminal() {
			t.Fatalf("job %s ended %s: %s", id, j.State, j.ErrorMessage)
		}
		time.Sleep(50 * time.Millisecond)
	}
	j, _ := e.store.GetJob(context.Background(), id)
	t.Fatalf("job %s not done: %+v", id, j)
	return nil
}

// TestChainJobThroughRealWorkers: a three-segment chain job runs on a
// worker with two ref slots; every fragment decodes, the frame counts are
// exact, and the fragments join by stream copy into the whole video.
func TestChainJobThroughRealWorkers(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	e.startWorker(t, 2)
	id := "chain-" + strings.ReplaceAll(e.pool, "-", "")[:8]
	id = e.submit(t, `{"id":"`+id+`","prompt":"a lighthouse at dusk","durationFrames":30,"windowFrames":13,"overlapFrames":4,`+
		`"width":96,"height":64,"steps":3,"fps":24,"pool":"`+e.pool+`"}`)
	segs := e.waitDone(t, id)
	if len(segs) != 3 {
		t.Fatalf("%d segments", len(segs))
	}
	e.checkFragments(t, segs, 30)
	ctx := context.Background()
	// Lineage: one attempt each, by this worker, with the model and
	// version that ran it, and timings.
	for _, s := range segs {
		a, _ := e.store.ListAttempts(ctx, id, s.Index)
		if len(a) != 1 || a[0].Worker.Backend != "ref" || a[0].Worker.Model != "ref" || a[0].Worker.ModelVersion == "" || !strings.HasPrefix(a[0].Worker.WorkerID, "w-") || a[0].Timings.DenoiseMS < 0 {
			t.Fatalf("segment %d attempts %+v", s.Index, a)
		}
	}
}

// TestRegistryAndDrain: while a segment runs the worker lists it in
// spool_workers; on shutdown past the drain timeout the segment is handed
// back (RETURNED, not counted against its attempts) and redone by another
// worker, and the entry is removed.
func TestRegistryAndDrain(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	// A slow worker: sim backend, 100 ms per step.
	stop := e.stoppable(t, worker.Config{ID: "slow-" + e.pool[:6], Pool: e.pool, Backend: "sim", Params: "step_ms=100", Slots: 1,
		Heartbeat: time.Second, Drain: 200 * time.Millisecond, Register: 100 * time.Millisecond})
	id := e.submit(t, `{"id":"drain-job","prompt":"x","durationFrames":9,"windowFrames":9,"overlapFrames":4,"model":"sim",`+
		`"width":64,"height":64,"steps":50,"fps":24,"pool":"`+e.pool+`"}`)
	e.waitWorker(t, "slow-"+e.pool[:6], "the running task", func(info *spoolv1.WorkerInfo) bool {
		return len(info.CurrentTasks) == 1 && info.CurrentTasks[0] == id+"/0/1" && info.Backend == "sim"
	})
	kv, _ := e.bus.Workers(context.Background())
	stop(5 * time.Second) // SIGTERM: 50 steps × 100 ms is far past the 200 ms drain
	if _, err := kv.Get(context.Background(), e.pool+".slow-"+e.pool[:6]); err == nil {
		t.Fatal("the worker is still registered after it stopped")
	}
	// Handed back at once: a fast worker picks it up and finishes the job.
	e.startWorker(t, 1)
	segs := e.waitDone(t, id)
	a, _ := e.store.ListAttempts(context.Background(), id, 0)
	// Lineage: the handed-back attempt, abandoned by the slow worker, and
	// the new one that the fast worker committed.
	if segs[0].CommittedAttempt != 2 || len(a) != 2 || a[0].Outcome != store.OutcomeAbandoned ||
		a[0].ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_RETURNED.String() ||
		!strings.HasPrefix(a[0].Worker.WorkerID, "slow-") || a[1].Outcome != store.OutcomeDone ||
		!strings.HasPrefix(a[1].Worker.WorkerID, "w-") {
		t.Fatalf("segment redone as %+v", a)
	}
}

// TestDrainWithinTimeout: SIGTERM while a short segment runs lets it finish
// and report DONE before the worker exits.
func TestDrainWithinTimeout(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	stop := e.stoppable(t, worker.Config{ID: "d-" + e.pool[:6], Pool: e.pool, Backend: "sim", Params: "step_ms=30", Slots: 1,
		Heartbeat: time.Second, Drain: 10 * time.Second, Register: 50 * time.Millisecond})
	id := e.submit(t, `{"id":"drain-ok-`+e.pool[:4]+`","prompt":"x","durationFrames":9,"windowFrames":9,"overlapFrames":4,"model":"sim",`+
		`"width":64,"height":64,"steps":20,"fps":24,"pool":"`+e.pool+`"}`)
	e.waitWorker(t, "d-"+e.pool[:6], "the segment running", func(info *spoolv1.WorkerInfo) bool { return len(info.CurrentTasks) == 1 })
	stop(10 * time.Second) // 20 steps × 30 ms remain well within the 10 s drain
	segs := e.waitDone(t, id)
	a, _ := e.store.ListAttempts(context.Background(), id, 0)
	if segs[0].CommittedAttempt != 1 || len(a) != 1 || a[0].Worker.WorkerID != "d-"+e.pool[:6]+"/0" {
		t.Fatalf("the draining worker did not finish its segment: %+v", a)
	}
}

// stoppable runs a worker with cfg and returns its stop: it cancels the
// run, as SIGTERM does, and fails the test unless the worker exits cleanly
// within limit.
func (e *env) stoppable(t *testing.T, cfg worker.Config) (stop func(limit time.Duration)) {
	t.Helper()
	cancel, wait := e.cancellable(t, cfg)
	return func(limit time.Duration) {
		t.Helper()
		cancel()
		wait(limit)
	}
}

// cancellable runs a worker of cfg until cancel; wait then waits at most
// limit for it to exit, and fails the test unless it exits with nil.
func (e *env) cancellable(t *testing.T, cfg worker.Config) (cancel func(), wait func(limit time.Duration)) {
	t.Helper()
	w, err := worker.New(cfg, e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return cancel, func(limit time.Duration) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(limit):
			t.Fatalf("the worker did not exit within %v of its stop", limit)
		}
	}
}

// checkFragments downloads the committed fragments: each must decode to
// exactly its kept frames, and all joined by stream copy (one init, every
// fragment after it) must decode to want frames.
func (e *env) checkFragments(t *testing.T, segs []store.Segment, want int) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var joined bytes.Buffer
	total := 0
	for i, s := range segs {
		r, _, err := e.blob.Get(ctx, blob.Key(s.VideoKey))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(r)
		r.Close()
		keep := s.Frames - s.Overlap - s.Trim
		p := filepath.Join(dir, "seg.mp4")
		_ = os.WriteFile(p, data, 0o644)
		info, err := media.Probe(ctx, p, media.ProbeOptions{CountFrames: true})
		if err != nil || info.Frames != keep || s.VideoFrames != keep {
			t.Fatalf("segment %d: %d frames decoded, %d reported, want %d (%v)", i, info.Frames, s.VideoFrames, keep, err)
		}
		total += keep
		f, err := mp4.DecodeFile(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			_ = f.Init.Encode(&joined)
		}
		for _, seg := range f.Segments {
			for _, frag := range seg.Fragments {
				_ = frag.Encode(&joined)
			}
		}
	}
	p := filepath.Join(dir, "joined.mp4")
	_ = os.WriteFile(p, joined.Bytes(), 0o644)
	info, err := media.Probe(ctx, p, media.ProbeOptions{CountFrames: true})
	if err != nil || info.Frames != want || total != want {
		t.Fatalf("joined video: %d frames (%d in fragments), want %d: %v", info.Frames, total, want, err)
	}
}

// TestCancelledJobTaskSkipped: a task of a job cancelled while it waited in
// the queue is settled as cancelled without running.
func TestCancelledJobTaskSkipped(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	ctx := context.Background()
	id := e.submit(t, `{"id":"skipped","prompt":"x","durationFrames":9,"windowFrames":9,"overlapFrames":4,`+
		`"width":64,"height":64,"steps":3,"fps":24,"pool":"`+e.pool+`"}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		segs, _ := e.store.ListSegments(ctx, id)
		if len(segs) == 1 && segs[0].State == store.SegQueued {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment never queued: %+v", segs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.bus.PublishCancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.startWorker(t, 1)
	for {
		a, _ := e.store.ListAttempts(ctx, id, 0)
		if len(a) == 1 && a[0].ErrorClass == spoolv1.ErrorClass_ERROR_CLASS_CANCELLED.String() {
			if a[0].Worker.Backend != "" || !strings.Contains(a[0].ErrorMsg, "before the segment started") {
				t.Fatalf("attempt %+v: want it skipped, not run", a[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task was not settled as cancelled: %+v", a)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if j, _ := e.store.GetJob(ctx, id); j.State != store.JobCancelled {
		t.Fatalf("job %s", j.State)
	}
}

// TestRunStoppedBeforeItStartsIsClean: a worker told to stop (SIGTERM)
// before it has declared its streams has nothing to drain: Run returns
// nil, and the process exits 0.
func TestRunStoppedBeforeItStartsIsClean(t *testing.T) {
	e := newEnv(t)
	w, err := worker.New(worker.Config{ID: "early-" + e.pool[:8], Pool: e.pool, Backend: "sim", Slots: 1, Heartbeat: time.Second},
		e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run after a stop before the start: %v, want nil", err)
	}
}
