package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/realpart"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// stallSlack is how long past its stall timeout (and grace) a stuck
// segment may take to be reported on a loaded machine: the check itself is
// a timer, the rest is publishing and the dispatcher's commit.
const stallSlack = 5 * time.Second

// oneSegment is a one-segment sim job of the test's pool.
func (e *env) oneSegment(t *testing.T, id string, steps int) string {
	return e.oneSegmentOf(t, id, steps, "sim")
}

// oneSegmentOf is a one-segment job of model in the test's pool.
func (e *env) oneSegmentOf(t *testing.T, id string, steps int, model string) string {
	return e.submit(t, `{"id":"`+id+`","prompt":"a stuck engine","durationFrames":9,"windowFrames":9,"overlapFrames":4,"model":"`+model+`",`+
		`"width":64,"height":64,"steps":`+strconv.Itoa(steps)+`,"fps":24,"pool":"`+e.pool+`"}`)
}

// waitAttempt polls the lineage of job's segment idx until attempt has
// ended (failed, abandoned or done), for at most within, and returns it.
func (e *env) waitAttempt(t *testing.T, job string, idx, attempt int, within time.Duration) store.Attempt {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		as, _ := e.store.ListAttempts(context.Background(), job, idx)
		for _, a := range as {
			if a.Attempt == attempt && (a.Outcome == store.OutcomeFailed || a.Outcome == store.OutcomeAbandoned || a.Outcome == store.OutcomeDone) {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s segment %d attempt %d did not end within %v: %+v", job, idx, attempt, within, as)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holds waits until worker id lists job's first attempt of segment 0 in
// the registry, and returns when it saw it.
func (e *env) holds(t *testing.T, id, job string) time.Time {
	t.Helper()
	e.waitWorker(t, id, "the task held", func(info *spoolv1.WorkerInfo) bool {
		return len(info.CurrentTasks) == 1 && info.CurrentTasks[0] == job+"/0/1"
	})
	return time.Now()
}

// committedElsewhere checks that job's only segment was committed by a
// worker whose id starts with healthy, and that every earlier attempt was
// the stuck worker's, STALLED or handed back.
func (e *env) committedElsewhere(t *testing.T, job, stuck, healthy string) {
	t.Helper()
	segs := e.waitDone(t, job)
	as, _ := e.store.ListAttempts(context.Background(), job, 0)
	for _, a := range as {
		switch {
		case a.Attempt == segs[0].CommittedAttempt:
			if a.Outcome != store.OutcomeDone || !strings.HasPrefix(a.Worker.WorkerID, healthy) {
				t.Fatalf("committed attempt %+v: want it done by %s", a, healthy)
			}
		case !strings.HasPrefix(a.Worker.WorkerID, stuck) || (a.ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_STALLED.String() &&
			a.ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_RETURNED.String()):
			t.Fatalf("attempt %+v: want the stuck worker's, stalled or returned", a)
		}
	}
}

// TestStuckStepEndsStalled: a worker process whose sim engine never ends
// denoise step 3 (the hang honours cancel) reports the attempt FAILED
// (stalled) within its stall timeout and a few seconds, and keeps serving:
// its engine returned on cancel. The dispatcher retries the segment (a
// counted failure), and it completes on another worker process. The stuck
// process stops cleanly on SIGTERM.
func TestStuckStepEndsStalled(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t, func(c *dispatcher.Config) { c.MaxAttempts = 5 })
	const stall = time.Second
	stuck := e.startProcess(t, "st-"+e.pool[:8], "SPOOL_WORKER_BACKEND=sim", "SPOOL_WORKER_BACKEND_PARAMS=step_ms=10;hang_at_step=3",
		"SPOOL_WORKER_STALL_TIMEOUT="+stall.String(), "SPOOL_WORKER_STALL_GRACE=10s", "SPOOL_WORKER_DRAIN_TIMEOUT=100ms")
	job := e.oneSegment(t, "stuck-"+e.pool[:6], 6)
	taken := e.holds(t, stuck.id, job)
	healthy := e.startProcess(t, "sh-"+e.pool[:8], "SPOOL_WORKER_BACKEND=sim")
	a := e.waitAttempt(t, job, 0, 1, stall+stallSlack)
	t.Logf("attempt 1 ended %v after the worker took it: %s", time.Since(taken).Round(time.Millisecond), a.ErrorMsg)
	if a.ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_STALLED.String() || !strings.Contains(a.ErrorMsg, "no progress for") ||
		!strings.HasPrefix(a.Worker.WorkerID, stuck.id) {
		t.Fatalf("attempt 1: %+v; want it stalled on %s", a, stuck.id)
	}
	// The engine honoured its cancel: the worker lives, and SIGTERM stops
	// it cleanly (a retry it took meanwhile is handed back).
	if err := stuck.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := stuck.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("the stuck worker exited %d after SIGTERM, want 0", code)
	}
	e.committedElsewhere(t, job, stuck.id, healthy.id)
}

// exit waits for the process to end within limit and returns its exit
// status.
func (p *process) exit(t *testing.T, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("%s: %v", p.id, err)
		}
		return 0
	case <-time.After(limit):
		t.Fatalf("%s did not exit within %v", p.id, limit)
		return -1
	}
}

// pythonModel is the model of pythonCatalog: a python-backend model whose
// module each worker names in its own parameters.
const pythonModel = "python-test"

// pythonCatalog is a catalog file: the shipped one and pythonModel.
func pythonCatalog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	doc := string(jobspec.Shipped()) + `
  ` + pythonModel + `:
    description: a python module of libs/infer/python or its tests, named by the worker
    backend: python
    params: {}
    frame_align: 1
    max_window: 257
    steps: 4
    guidance: 5
    shift: 0
    fps: 24
    gpu_memory_mib: 0
    audio_sample_rate: 0
    talking_head: false
    step_time: 0s
    default_resolution: small
    any_size: true
    resolutions:
      - {name: small, width: 64, height: 64, window: 9, overlap: 4}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pythonParams are the worker variables of a python-backend worker serving
// pythonModel of catalog by module (from libs/infer/python or its tests),
// with the plugin that `make -C libs/infer python` builds. A missing plugin
// fails the test (it skips only under -short outside CI).
func pythonParams(t *testing.T, catalog, module string) []string {
	t.Helper()
	infer, err := filepath.Abs("../../../libs/infer")
	if err != nil {
		t.Fatal(err)
	}
	plugins := filepath.Join(infer, "build")
	if _, err := os.Stat(filepath.Join(plugins, "libspool_infer_python.so")); err != nil {
		realpart.Missing(t, "python plugin not built: run \"make -C libs/infer python\" (needs Debian's python3-dev and python3-numpy)")
	}
	py := filepath.Join(infer, "python")
	return []string{"SPOOL_CATALOG=" + catalog, "SPOOL_WORKER_BACKEND=python", "SPOOL_WORKER_MODELS=" + pythonModel, "SPOOL_WORKER_PLUGIN_DIR=" + plugins,
		"SPOOL_WORKER_BACKEND_PARAMS=module=" + module + ";path=" + py + ":" + filepath.Join(py, "tests")}
}

// TestWedgedPythonWorkerExits: a worker process whose Python module blocks
// in time.sleep inside generate_segment, where the run's cancel cannot
// reach it, reports the attempt FAILED (stalled) within its stall timeout,
// grace and a few seconds, deregisters from spool_workers and exits 75
// (worker.ExitWedged). The segment completes on another worker process.
func TestWedgedPythonWorkerExits(t *testing.T) {
	e := newEnv(t)
	catalog := pythonCatalog(t)
	e.startDispatcher(t, func(c *dispatcher.Config) { c.Catalog.File, c.Pools = catalog, e.pool+":"+pythonModel })
	const stall, grace = 2 * time.Second, time.Second
	wedged := e.startProcess(t, "pw-"+e.pool[:8], append(pythonParams(t, catalog, "spool_hangs"),
		"SPOOL_WORKER_STALL_TIMEOUT="+stall.String(), "SPOOL_WORKER_STALL_GRACE="+grace.String())...)
	job := e.oneSegmentOf(t, "sleeps-"+e.pool[:6], 3, pythonModel)
	taken := e.holds(t, wedged.id, job)
	healthy := e.startProcess(t, "ph-"+e.pool[:8], pythonParams(t, catalog, "spool_numpy_ref")...)
	if code := wedged.exit(t, stall+grace+stallSlack); code != worker.ExitWedged {
		t.Fatalf("the wedged worker exited %d, want %d", code, worker.ExitWedged)
	}
	t.Logf("the wedged worker exited %v after it took the task", time.Since(taken).Round(time.Millisecond))
	kv, err := e.bus.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), e.pool+"."+wedged.id); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the wedged worker is still registered: %v", err)
	}
	a := e.waitAttempt(t, job, 0, 1, stallSlack)
	if a.ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_STALLED.String() || !strings.Contains(a.ErrorMsg, "did not return within") ||
		!strings.HasPrefix(a.Worker.WorkerID, wedged.id) {
		t.Fatalf("attempt 1: %+v; want it stalled on %s, its engine given up", a, wedged.id)
	}
	e.committedElsewhere(t, job, wedged.id, healthy.id)
}

// wedgedWorker runs, in process, a worker whose sim engine hangs in step
// 2 and ignores cancel, with the stall timeout and grace given; Run's
// error comes on the channel.
func (e *env) wedgedWorker(t *testing.T, id string, stall, grace time.Duration) (*worker.Worker, <-chan error) {
	t.Helper()
	w, err := worker.New(worker.Config{ID: id, Pool: e.pool, Backend: "sim", Params: "step_ms=0;hang_at_step=2;hang_ignores_cancel=1",
		Slots: 1, Heartbeat: 200 * time.Millisecond, Register: 50 * time.Millisecond, StallTimeout: stall, StallGrace: grace},
		e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	return w, done
}

// healthyWorker runs, in process until the test ends, a sim worker.
func (e *env) healthyWorker(t *testing.T, id string) {
	t.Helper()
	hw, err := worker.New(worker.Config{ID: id, Pool: e.pool, Backend: "sim", Slots: 1, Heartbeat: time.Second},
		e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hw.Close)
	e.run(t, "healthy worker", hw.Run)
}

// wedged waits for a wedged worker's Run to return ErrEngineWedged, exit
// status 75, within its stall timeout, grace and stallSlack.
func wedged(t *testing.T, done <-chan error, within time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		var coded interface{ ExitCode() int }
		if !errors.Is(err, worker.ErrEngineWedged) || !errors.As(err, &coded) || coded.ExitCode() != worker.ExitWedged {
			t.Fatalf("Run: %v; want ErrEngineWedged, exit status %d", err, worker.ExitWedged)
		}
	case <-time.After(within + stallSlack):
		t.Fatal("Run did not return after its engine wedged")
	}
}

// stalledAttempt checks that job's attempt 1 ended STALLED, its engine
// given up.
func (e *env) stalledAttempt(t *testing.T, job string) {
	t.Helper()
	a := e.waitAttempt(t, job, 0, 1, stallSlack)
	if a.ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_STALLED.String() || !strings.Contains(a.ErrorMsg, "did not return within") {
		t.Fatalf("attempt 1: %+v; want it stalled, its engine given up", a)
	}
}

// TestWedgedEngineEndsRun: in process, a sim engine whose hung step
// ignores cancel makes Run return ErrEngineWedged (exit status 75) once
// the stall timeout and grace have passed, with the attempt reported
// stalled and the worker deregistered; Close does not wait for the stuck
// engine. Another worker completes the segment.
func TestWedgedEngineEndsRun(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	id := "we-" + e.pool[:8]
	const stall, grace = time.Second, 500 * time.Millisecond
	w, done := e.wedgedWorker(t, id, stall, grace)
	job := e.oneSegment(t, "wedged-"+e.pool[:6], 4)
	e.holds(t, id, job)
	wedged(t, done, stall+grace)
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for the wedged engine")
	}
	kv, _ := e.bus.Workers(context.Background())
	if _, err := kv.Get(context.Background(), e.pool+"."+id); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("still registered: %v", err)
	}
	e.stalledAttempt(t, job)
	healthy := "wh-" + e.pool[:8]
	e.healthyWorker(t, healthy)
	e.committedElsewhere(t, job, id, healthy)
}

// TestWedgedEngineStallsPastAckWait: an engine that ignores cancel, with a
// stall grace longer than AckWait and a healthy worker fetching beside it,
// still ends its attempt STALLED: the task is not delivered again while
// the grace runs (the heartbeat goes on), which would have settled it
// ABANDONED on the other worker first.
func TestWedgedEngineStallsPastAckWait(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	id := "wa-" + e.pool[:8]
	const stall, grace = time.Second, 2 * ackWait
	w, done := e.wedgedWorker(t, id, stall, grace)
	t.Cleanup(w.Close)
	job := e.oneSegment(t, "past-ack-"+e.pool[:6], 4)
	e.holds(t, id, job)
	healthy := "wah-" + e.pool[:8]
	e.healthyWorker(t, healthy)
	wedged(t, done, stall+grace)
	e.stalledAttempt(t, job)
	e.committedElsewhere(t, job, id, healthy)
}

// TestDeadlineEndsAttemptStalled: a segment that keeps making progress but
// runs past its task's deadline (the dispatcher's segment deadline) ends
// FAILED (stalled), and its worker goes on serving.
func TestDeadlineEndsAttemptStalled(t *testing.T) {
	e := newEnv(t)
	const deadline = 1500 * time.Millisecond
	e.startDispatcher(t, func(c *dispatcher.Config) { c.SegmentDeadline, c.MaxAttempts = deadline, 1 })
	id := "dl-" + e.pool[:8]
	// 100 steps of 100 ms: progress all along, 10 s in all.
	stop := e.stoppable(t, worker.Config{ID: id, Pool: e.pool, Backend: "sim", Params: "step_ms=100", Slots: 1,
		Heartbeat: 200 * time.Millisecond, Register: 50 * time.Millisecond, StallTimeout: time.Minute})
	job := e.oneSegment(t, "deadline-"+e.pool[:6], 100)
	a := e.waitAttempt(t, job, 0, 1, deadline+stallSlack)
	if a.ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_STALLED.String() || !strings.Contains(a.ErrorMsg, "deadline") {
		t.Fatalf("attempt 1: %+v; want it stalled past its deadline", a)
	}
	stop(10 * time.Second) // not wedged: the engine returned on cancel, Run ends cleanly
}

// TestFrozenWorkerTaskIsRedelivered: heartbeats come from the worker's
// watchdog, so a worker frozen whole (SIGSTOP: nothing of it runs, neither
// its engine nor its watchdog) sends none, and AckWait redelivers its task:
// another worker reports the attempt abandoned and completes the segment.
func TestFrozenWorkerTaskIsRedelivered(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	frozen := e.startProcess(t, "fz-"+e.pool[:8], "SPOOL_WORKER_BACKEND=sim", "SPOOL_WORKER_BACKEND_PARAMS=step_ms=10;hang_at_step=3",
		"SPOOL_WORKER_STALL_TIMEOUT=1m")
	job := e.oneSegment(t, "frozen-"+e.pool[:6], 6)
	e.holds(t, frozen.id, job)
	healthy := e.startProcess(t, "fh-"+e.pool[:8], "SPOOL_WORKER_BACKEND=sim")
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.cmd.Process.Signal(syscall.SIGCONT) })
	a := e.waitAttempt(t, job, 0, 1, ackWait+stallSlack)
	if a.Outcome != store.OutcomeAbandoned || a.ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_ABANDONED.String() {
		t.Fatalf("attempt 1: %+v; want it abandoned once AckWait passed", a)
	}
	segs := e.waitDone(t, job)
	as, _ := e.store.ListAttempts(context.Background(), job, 0)
	if segs[0].CommittedAttempt != 2 || len(as) != 2 || !strings.HasPrefix(as[1].Worker.WorkerID, healthy.id) {
		t.Fatalf("lineage %+v, committed attempt %d; want attempt 2 done by %s", as, segs[0].CommittedAttempt, healthy.id)
	}
}
