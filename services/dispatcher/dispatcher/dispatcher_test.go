package dispatcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

// TestMain traces the dispatcher with a real SDK and the W3C propagator,
// as the services do, so that trace contexts travel in the tests too.
func TestMain(m *testing.M) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider())
	otel.SetTextMapPropagator(propagation.TraceContext{})
	os.Exit(devstacktest.Run(m))
}

type env struct {
	t     *testing.T
	bus   *bus.Bus
	store *store.Store
	cfg   dispatcher.Config
}

// newEnv connects to the real NATS and Postgres of the test stack. Each test
// gets its own pool, so harness workers of different tests never meet.
func newEnv(t *testing.T) *env {
	st := devstacktest.Require(t, devstacktest.NATS, devstacktest.Postgres)
	ctx := context.Background()
	b, err := bus.Connect(ctx, st.NATSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	s, err := store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pool := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return &env{t: t, bus: b, store: s, cfg: dispatcher.Config{
		Pools: pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: 20 * time.Millisecond, ReconcileEvery: time.Hour,
		RunningStale: time.Hour, QueuedStale: time.Hour, LiveAhead: 2, PoolWindow: 8, OutboxBatch: 64, SubmitBatch: 16,
		SegmentDeadline: time.Minute,
	}}
}

func (e *env) pool() string { name, _, _ := strings.Cut(e.cfg.Pools, ":"); return name }

// start runs a dispatcher until the returned stop is called.
func (e *env) start() (d *dispatcher.Dispatcher, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	d, err := dispatcher.New(ctx, e.cfg, e.bus, e.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("dispatcher: %v", err)
		}
	}
	e.t.Cleanup(stop)
	return d, stop
}

// submit publishes a JSON spec (with the test's pool) and returns the job id.
func (e *env) submit(spec string) string {
	msg := nats.NewMsg(bus.SubjectJobSubmit)
	msg.Data = []byte(spec)
	msg.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	ack, err := e.bus.JetStream().PublishMsg(context.Background(), msg)
	if err != nil {
		e.t.Fatal(err)
	}
	var s struct{ ID string }
	_ = json.Unmarshal([]byte(spec), &s)
	if s.ID != "" {
		return s.ID
	}
	return fmt.Sprintf("j%d", ack.Sequence)
}

// worker is a harness that acts on the pool's tasks as a worker would.
type worker struct {
	mu    sync.Mutex
	tasks []*spoolv1.SegmentTask
	// fail decides whether an attempt fails, and how.
	fail func(*spoolv1.SegmentTask) spoolv1.ErrorClass
	// failAfterTail decides whether an attempt fails, and how, after its
	// TAIL_READY (a worker that died while the tail was uploading).
	failAfterTail func(*spoolv1.SegmentTask) spoolv1.ErrorClass
}

func (w *worker) seen() []*spoolv1.SegmentTask {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*spoolv1.SegmentTask(nil), w.tasks...)
}

func (e *env) runWorker(w *worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	c, err := e.bus.DeclarePool(ctx, e.pool())
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			m, err := bus.FetchOne(ctx, c, 200*time.Millisecond)
			if err != nil {
				continue
			}
			task, err := bus.DecodeTask(m.Data())
			if err != nil {
				e.t.Errorf("task: %v", err)
				continue
			}
			w.mu.Lock()
			w.tasks = append(w.tasks, task)
			w.mu.Unlock()
			e.act(ctx, w, task)
			_ = m.Ack()
		}
	}()
	return func() { cancel(); <-done }
}

func (e *env) act(ctx context.Context, w *worker, t *spoolv1.SegmentTask) {
	result := func() *spoolv1.SegmentResult {
		return &spoolv1.SegmentResult{JobId: t.JobId, Index: t.Index, Attempt: t.Attempt, WorkerId: "harness", Backend: "harness", Pool: t.Pool}
	}
	// failed publishes FAILED when decide (if set) says the attempt fails.
	failed := func(decide func(*spoolv1.SegmentTask) spoolv1.ErrorClass, msg string) bool {
		if decide == nil {
			return false
		}
		class := decide(t)
		if class == spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED {
			return false
		}
		r := result()
		r.Phase, r.ErrorClass, r.ErrorMessage = spoolv1.Phase_PHASE_FAILED, class, msg
		_, _ = e.bus.PublishResult(ctx, r)
		return true
	}
	if failed(w.fail, "harness failure") {
		return
	}
	var tailKey string
	if t.TailFrames > 0 {
		k, _ := blob.SegmentTail(t.JobId, t.Index, t.Attempt)
		tailKey = string(k)
		r := result()
		r.Phase, r.TailKey = spoolv1.Phase_PHASE_TAIL_READY, tailKey
		if _, err := e.bus.PublishResult(ctx, r); err != nil && ctx.Err() == nil {
			e.t.Errorf("tail ready: %v", err)
		}
		if failed(w.failAfterTail, "harness failure after the tail") {
			return
		}
	}
	video, _ := blob.SegmentVideo(t.JobId, t.Index, t.Attempt, "m4s")
	r := result()
	r.Phase, r.TailKey, r.VideoKey, r.Frames = spoolv1.Phase_PHASE_DONE, tailKey, string(video), t.Frames-t.Overlap
	r.Sha256, r.Bytes = strings.Repeat("ab", 32), 1000
	if _, err := e.bus.PublishResult(ctx, r); err != nil && ctx.Err() == nil {
		e.t.Errorf("done: %v", err)
	}
}

// waitJob polls the job until cond holds.
func (e *env) waitJob(id string, what string, cond func(store.Job, []store.Segment) bool) (store.Job, []store.Segment) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := e.store.GetJob(context.Background(), id)
		if err == nil {
			segs, _ := e.store.ListSegments(context.Background(), id)
			if cond(j, segs) {
				return j, segs
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("job %s: %s never happened; state %s, %d/%d segments done", id, what, j.State, j.SegmentsDone, j.SegmentsTotal)
			}
		} else if time.Now().After(deadline) {
			e.t.Fatalf("job %s: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allDone(j store.Job, segs []store.Segment) bool {
	if len(segs) == 0 {
		return false
	}
	for _, s := range segs {
		if s.State != store.SegDone {
			return false
		}
	}
	return j.SegmentsDone == len(segs)
}

func spec(e *env, extra string) string {
	return `{"prompt":"a fox in snow","durationFrames":40,"windowFrames":13,"overlapFrames":4,"width":64,"height":64,"steps":2,"pool":"` +
		e.pool() + `"` + extra + `}`
}

func TestChainJobRunsToCompletion(t *testing.T) {
	e := newEnv(t)
	e.start()
	w := &worker{}
	defer e.runWorker(w)()
	id := e.submit(spec(e, ""))
	j, segs := e.waitJob(id, "completion", allDone)
	if len(segs) != 4 || j.State != store.JobRunning || j.Progress != 1 {
		t.Fatalf("job %+v, %d segments", j, len(segs))
	}
	tasks := w.seen()
	for _, task := range tasks {
		if task.Index == 0 {
			if task.ConditioningKey != "" || task.Overlap != 0 {
				t.Fatalf("segment 0 task %v", task)
			}
			continue
		}
		want, _ := blob.SegmentTail(id, task.Index-1, 1)
		if task.ConditioningKey != string(want) || task.Overlap != 4 {
			t.Fatalf("segment %d conditioned on %q, want %q", task.Index, task.ConditioningKey, want)
		}
	}
	last := tasks[len(tasks)-1]
	if last.Index != 3 || last.TailFrames != 0 || tasks[0].TailFrames != 4 {
		t.Fatalf("tail frames: first %d, last %d", tasks[0].TailFrames, last.TailFrames)
	}
}

func TestIndependentJobReleasesEverySegmentAtOnce(t *testing.T) {
	e := newEnv(t)
	e.start()
	id := e.submit(spec(e, `,"mode":"MODE_INDEPENDENT"`))
	_, segs := e.waitJob(id, "all queued", func(j store.Job, segs []store.Segment) bool {
		for _, s := range segs {
			if s.State != store.SegQueued {
				return false
			}
		}
		return len(segs) > 0
	})
	c, _ := e.bus.DeclarePool(context.Background(), e.pool())
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := c.Info(context.Background())
		if info.NumPending == uint64(len(segs)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks published, want %d", info.NumPending, len(segs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	w := &worker{}
	defer e.runWorker(w)()
	e.waitJob(id, "completion", allDone)
	for _, task := range w.seen() {
		if task.TailFrames != 0 || task.ConditioningKey != "" || task.Mode != spoolv1.Mode_MODE_INDEPENDENT {
			t.Fatalf("independent task %v", task)
		}
	}
}

func TestDuplicateResultsChangeNothing(t *testing.T) {
	e := newEnv(t)
	e.start()
	w := &worker{}
	stop := e.runWorker(w)
	id := e.submit(spec(e, ""))
	before, _ := e.waitJob(id, "completion", allDone)
	stop()
	// Every DONE again, past JetStream's dedup (other message ids), and a
	// DONE of an attempt that never ran.
	for _, task := range w.seen() {
		video, _ := blob.SegmentVideo(id, task.Index, 1, "m4s")
		for i, attempt := range []uint32{1, 7} {
			r := &spoolv1.SegmentResult{JobId: id, Index: task.Index, Attempt: attempt, Phase: spoolv1.Phase_PHASE_DONE,
				VideoKey: string(video), Sha256: strings.Repeat("cd", 32), Frames: 1}
			subject, _ := bus.ResultsSubject(id)
			if _, err := e.bus.Publish(context.Background(), subject, fmt.Sprintf("dup-%s-%d-%d", id, task.Index, i), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	after, segs := e.waitJob(id, "still complete", allDone)
	if after.SegmentsDone != before.SegmentsDone || after.Progress != before.Progress {
		t.Fatalf("duplicates changed the job: %d→%d", before.SegmentsDone, after.SegmentsDone)
	}
	for _, s := range segs {
		if s.CommittedAttempt != 1 || s.VideoSHA256 != strings.Repeat("ab", 32) {
			t.Fatalf("segment %d: committed attempt %d sha %s", s.Index, s.CommittedAttempt, s.VideoSHA256)
		}
	}
}

func TestRejections(t *testing.T) {
	e := newEnv(t)
	e.start()
	sub, err := e.bus.Conn().SubscribeSync(bus.SubjectAllEvents)
	if err != nil {
		t.Fatal(err)
	}
	p := `,"pool":"` + e.pool() + `"}`
	n := fmt.Sprint(time.Now().UnixNano() % 1e9) // ids unique across -count runs
	// model is the model the rejected job records: the one it asked for.
	cases := []struct{ spec, field, contains, model string }{
		{`{"id":"rej-fps-` + n + `","prompt":"a","durationS":1,"fps":500` + p, "fps", "1..60", "ref"},
		{`{"id":"rej-model-` + n + `","prompt":"a","durationS":1,"model":"gpt"` + p, "model", "ref", "gpt"},
		{`{"id":"rej-pool-` + n + `","prompt":"a","durationS":1,"pool":"nowhere"}`, "pool", "one of", "ref"},
		{`{"prompt":"a","durationS":"long"` + p, "duration_s", "durationS", "ref"},
		// The pool feeds ref and sim workers: a SkyReels-V2 job is refused,
		// never made by them.
		{`{"id":"rej-sky-` + n + `","prompt":"x","durationS":2,"model":"skyreels-v2-df-1.3b-540p"}`, "model",
			"a model that a pool serves: ref, sim", "skyreels-v2-df-1.3b-540p"},
		{`{"id":"rej-mismatch-` + n + `","prompt":"x","durationS":2,"model":"skyreels-v2-df-14b-720p"` + p, "pool",
			"a pool that serves model skyreels-v2-df-14b-720p (pool " + e.pool() + " serves ref, sim; no pool serves it)", "skyreels-v2-df-14b-720p"},
	}
	for _, c := range cases {
		id := e.submit(c.spec)
		j, _ := e.waitJob(id, "rejection", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobRejected })
		if j.ErrorField != c.field || j.ErrorCode != "invalid_argument" || !strings.Contains(j.ErrorMessage, c.contains) || j.Model != c.model {
			t.Errorf("%s: field %q code %q message %q model %q", id, j.ErrorField, j.ErrorCode, j.ErrorMessage, j.Model)
		}
	}
	// This dispatcher has no object store: a job with media is refused as
	// unavailable here, never retried for ever.
	media := e.submit(`{"id":"rej-media-` + n + `","prompt":"a","durationS":1,"image":"up-any"` + p)
	if j, _ := e.waitJob(media, "rejection", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobRejected }); j.ErrorField != "image" ||
		j.ErrorCode != "unavailable" || !strings.Contains(j.ErrorMessage, "object store") {
		t.Errorf("a media job without a store: field %q code %q message %q", j.ErrorField, j.ErrorCode, j.ErrorMessage)
	}
	// A malformed body without an id is stored under its stream sequence.
	id := e.submit(`{"prompt": 12}`)
	j, _ := e.waitJob(id, "rejection", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobRejected })
	if !strings.Contains(j.ErrorMessage, "prompt") {
		t.Fatalf("message %q", j.ErrorMessage)
	}
	// Every rejection was announced.
	seen := map[string]bool{}
	for len(seen) < len(cases)+2 {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("events: %v (saw %v)", err, seen)
		}
		ev, _ := bus.DecodeEvent(m.Data)
		if ev.GetState() == spoolv1.JobState_JOB_STATE_REJECTED {
			seen[ev.GetJobId()] = true
		}
	}
}

func TestRetriesRunToExhaustion(t *testing.T) {
	e := newEnv(t)
	e.start()
	w := &worker{fail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
		if t.Index == 1 {
			return spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT
		}
		return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	}}
	defer e.runWorker(w)()
	id := e.submit(spec(e, ""))
	j, segs := e.waitJob(id, "failure", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobFailed })
	if !strings.Contains(j.ErrorMessage, "segment 1 failed (attempt 3 of 3") || !strings.Contains(j.ErrorMessage, "harness failure") {
		t.Fatalf("reason %q", j.ErrorMessage)
	}
	if segs[1].State != store.SegFailed || segs[2].State != store.SegCancelled || segs[0].State != store.SegDone {
		t.Fatalf("segments %v %v %v", segs[0].State, segs[1].State, segs[2].State)
	}
	attempts, _ := e.store.ListAttempts(context.Background(), id, 1)
	if len(attempts) != 3 {
		t.Fatalf("%d attempts of segment 1, want 3", len(attempts))
	}
}

// TestReturnedAttemptsDoNotCount: attempts that workers give back as they
// stop (RETURNED) are retried at once and do not count against
// MaxAttempts (3): four returns and two transient failures still end in a
// committed segment. A segment given back for ever ends its job.
func TestReturnedAttemptsDoNotCount(t *testing.T) {
	e := newEnv(t)
	e.start()
	w := &worker{fail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
		switch {
		case t.JobId == "returned-ever" && t.Index == 0:
			return spoolv1.ErrorClass_ERROR_CLASS_RETURNED
		case t.Index != 1 || t.Attempt > 6:
			return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
		case t.Attempt == 2 || t.Attempt == 5:
			return spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT
		default:
			return spoolv1.ErrorClass_ERROR_CLASS_RETURNED
		}
	}}
	defer e.runWorker(w)()
	id := e.submit(spec(e, `,"id":"returned-mix"`))
	_, segs := e.waitJob(id, "success", allDone)
	attempts, _ := e.store.ListAttempts(context.Background(), id, 1)
	var outcomes []string
	for _, a := range attempts {
		outcomes = append(outcomes, string(a.Outcome)+":"+strings.TrimPrefix(a.ErrorClass, "ERROR_CLASS_"))
	}
	want := "abandoned:RETURNED failed:TRANSIENT abandoned:RETURNED abandoned:RETURNED failed:TRANSIENT abandoned:RETURNED done:"
	if strings.Join(outcomes, " ") != want || segs[1].CommittedAttempt != 7 {
		t.Fatalf("segment 1: %v, committed attempt %d; want %s, 7", outcomes, segs[1].CommittedAttempt, want)
	}

	ever := e.submit(spec(e, `,"id":"returned-ever","mode":"MODE_INDEPENDENT"`))
	j, _ := e.waitJob(ever, "failure", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobFailed })
	if !strings.Contains(j.ErrorMessage, "segment 0 was given back or re-conditioned 20 times") {
		t.Fatalf("reason %q", j.ErrorMessage)
	}
}

// TestLateReturnIsNotCounted: a worker hands an attempt back (RETURNED),
// but its result reaches NATS only after the task was delivered again and
// the next worker reported that attempt ABANDONED (a NATS failover). The
// late RETURNED, which has its own message id, still comes through: the
// attempt is recorded as given back, not counted against the segment.
func TestLateReturnIsNotCounted(t *testing.T) {
	e := newEnv(t)
	e.start()
	w := &worker{fail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
		if t.Index == 1 && t.Attempt == 1 {
			return spoolv1.ErrorClass_ERROR_CLASS_ABANDONED // the redelivery's report
		}
		return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	}}
	defer e.runWorker(w)()
	id := e.submit(spec(e, `,"id":"returned-late"`))
	e.waitJob(id, "success", allDone)
	if _, err := e.bus.PublishResult(context.Background(), &spoolv1.SegmentResult{JobId: id, Index: 1, Attempt: 1, Pool: e.pool(),
		Phase: spoolv1.Phase_PHASE_FAILED, ErrorClass: spoolv1.ErrorClass_ERROR_CLASS_RETURNED,
		ErrorMessage: "handed back: its worker was draining"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a, _ := e.store.ListAttempts(context.Background(), id, 1)
		if len(a) == 2 && a[0].Outcome == store.OutcomeAbandoned && a[0].ErrorClass == "ERROR_CLASS_RETURNED" &&
			strings.Contains(a[0].ErrorMsg, "reported after the task was delivered again") && a[1].Outcome == store.OutcomeDone {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment 1's attempts after a late RETURNED: %+v", a)
		}
	}
}

// TestConditioningRetriesOnTheNewestTail: segment 0's first attempt hands
// its tail off and dies before the tail reaches the store; segment 1,
// released on that tail, cannot read it (CONDITIONING). It is retried at
// once on the tail of segment 0's newest attempt, without counting: the
// job completes, and segment 1's committed attempt was conditioned on
// segment 0's committed tail.
func TestConditioningRetriesOnTheNewestTail(t *testing.T) {
	e := newEnv(t)
	e.start()
	w := &worker{
		failAfterTail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
			if t.Index == 0 && t.Attempt == 1 {
				return spoolv1.ErrorClass_ERROR_CLASS_ABANDONED
			}
			return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
		},
		fail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
			if t.Index == 1 && strings.Contains(t.ConditioningKey, "/seg/0/a1/") {
				return spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING
			}
			return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
		},
	}
	defer e.runWorker(w)()
	id := e.submit(spec(e, `,"id":"reconditioned"`))
	_, segs := e.waitJob(id, "success", allDone)
	tail0, _ := blob.SegmentTail(id, 0, uint32(segs[0].CommittedAttempt))
	var conditioned []string
	for _, task := range w.seen() {
		if task.JobId == id && task.Index == 1 {
			conditioned = append(conditioned, task.ConditioningKey)
		}
	}
	a, _ := e.store.ListAttempts(context.Background(), id, 1)
	if segs[0].CommittedAttempt != 2 || segs[1].CommittedAttempt != 2 || len(a) != 2 ||
		a[0].ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING.String() || segs[1].ConditioningKey != string(tail0) ||
		len(conditioned) != 2 || conditioned[1] != string(tail0) {
		t.Fatalf("segment 0 committed a%d, segment 1 a%d on %q; attempts of 1: %+v; conditioned on %q",
			segs[0].CommittedAttempt, segs[1].CommittedAttempt, segs[1].ConditioningKey, a, conditioned)
	}
}

// TestRetryTakesTheCommittedTail: segment 0's first attempt hands its
// tail off and dies; segment 1, conditioned on that tail, is abandoned
// once segment 0 is committed by its next attempt: the retry of segment 1
// is conditioned on the committed attempt's tail, not on the dead one's
// again (which would never come).
func TestRetryTakesTheCommittedTail(t *testing.T) {
	e := newEnv(t)
	e.start()
	w := &worker{
		failAfterTail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
			if t.Index == 0 && t.Attempt == 1 {
				return spoolv1.ErrorClass_ERROR_CLASS_ABANDONED
			}
			return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
		},
		fail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
			if t.Index != 1 || !strings.Contains(t.ConditioningKey, "/seg/0/a1/") {
				return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
			}
			// The other runner commits segment 0 meanwhile.
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if segs, _ := e.store.ListSegments(context.Background(), t.JobId); len(segs) > 0 && segs[0].State == store.SegDone {
					break
				}
			}
			return spoolv1.ErrorClass_ERROR_CLASS_ABANDONED
		},
	}
	defer e.runWorker(w)()
	defer e.runWorker(w)()
	id := e.submit(spec(e, `,"id":"recommitted"`))
	_, segs := e.waitJob(id, "success", allDone)
	tail0, _ := blob.SegmentTail(id, 0, uint32(segs[0].CommittedAttempt))
	var conditioned []string
	for _, task := range w.seen() {
		if task.JobId == id && task.Index == 1 {
			conditioned = append(conditioned, task.ConditioningKey)
		}
	}
	a, _ := e.store.ListAttempts(context.Background(), id, 1)
	if segs[0].CommittedAttempt != 2 || segs[1].CommittedAttempt != 2 || len(a) != 2 ||
		a[0].ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_ABANDONED.String() || segs[1].ConditioningKey != string(tail0) ||
		len(conditioned) != 2 || conditioned[1] != string(tail0) {
		t.Fatalf("segment 0 committed a%d, segment 1 a%d on %q; attempts of 1: %+v; conditioned on %q",
			segs[0].CommittedAttempt, segs[1].CommittedAttempt, segs[1].ConditioningKey, a, conditioned)
	}
}

func TestCancelStopsTheJob(t *testing.T) {
	e := newEnv(t)
	e.start()
	cancels, err := e.bus.Conn().SubscribeSync(bus.SubjectAllCancels)
	if err != nil {
		t.Fatal(err)
	}
	id := e.submit(spec(e, ""))
	e.waitJob(id, "queued", func(j store.Job, segs []store.Segment) bool { return len(segs) > 0 })
	resp, err := e.bus.Conn().Request("$SRV.PING.spool", nil, 2*time.Second)
	if err != nil || len(resp.Data) == 0 {
		t.Fatalf("micro service ping: %v", err)
	}
	resp, err = e.bus.Conn().Request("jobs.cancel", []byte(id), 2*time.Second)
	if err != nil || !strings.Contains(string(resp.Data), `"cancelled":true`) {
		t.Fatalf("jobs.cancel: %v %s", err, resp.Data)
	}
	j, segs := e.waitJob(id, "cancel", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobCancelled })
	for _, s := range segs {
		if s.State != store.SegCancelled {
			t.Fatalf("segment %d is %s", s.Index, s.State)
		}
	}
	if m, err := cancels.NextMsg(2 * time.Second); err != nil || !strings.HasSuffix(m.Subject, "."+id) {
		t.Fatalf("workers were not told: %v", err)
	}
	// A result arriving after the cancel releases nothing.
	w := &worker{}
	defer e.runWorker(w)()
	time.Sleep(300 * time.Millisecond)
	_, segs = e.waitJob(id, "still cancelled", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobCancelled })
	if segs[1].State != store.SegCancelled {
		t.Fatalf("segment 1 released after cancel: %s", segs[1].State)
	}
	got, err := e.bus.Conn().Request("jobs.get", []byte(id), 2*time.Second)
	if err != nil || !strings.Contains(string(got.Data), `"state":"cancelled"`) {
		t.Fatalf("jobs.get: %v %s (job %s)", err, got.Data, j.State)
	}
}

// TestReconcilerRecoversAfterPurge: the segment stream is purged mid-job;
// Postgres still says a segment is queued, and the reconciler re-publishes
// it, so the job completes.
func TestReconcilerRecoversAfterPurge(t *testing.T) {
	e := newEnv(t)
	e.cfg.QueuedStale, e.cfg.RunningStale = 100*time.Millisecond, 100*time.Millisecond
	d, _ := e.start()
	id := e.submit(spec(e, ""))
	e.waitJob(id, "queued", func(j store.Job, segs []store.Segment) bool { return len(segs) > 0 && segs[0].State == store.SegQueued })
	c, _ := e.bus.DeclarePool(context.Background(), e.pool())
	waitPending(t, c, 1)
	s, _ := e.bus.JetStream().Stream(context.Background(), bus.StreamSegments)
	subject, _ := bus.SegmentsSubject(e.pool())
	if err := s.Purge(context.Background(), jetstream.WithPurgeSubject(subject)); err != nil {
		t.Fatal(err)
	}
	waitPending(t, c, 0)
	time.Sleep(150 * time.Millisecond)
	n, err := d.Reconcile(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("reconcile re-published %d: %v", n, err)
	}
	w := &worker{}
	defer e.runWorker(w)()
	_, segs := e.waitJob(id, "completion", allDone)
	if segs[0].CommittedAttempt != 2 {
		t.Fatalf("segment 0 committed attempt %d, want the re-published 2", segs[0].CommittedAttempt)
	}
}

func waitPending(t *testing.T, c jetstream.Consumer, n uint64) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := c.Info(context.Background())
		if err == nil && info.NumPending == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool never had %d pending", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRestartMidJob: the dispatcher stops mid-job and another starts; the
// job finishes.
func TestRestartMidJob(t *testing.T) {
	e := newEnv(t)
	_, stop := e.start()
	var once sync.Once
	halfway := make(chan struct{})
	w := &worker{fail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
		if t.Index == 2 {
			once.Do(func() { close(halfway) })
		}
		return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	}}
	defer e.runWorker(w)()
	id := e.submit(spec(e, ""))
	<-halfway
	stop()
	e.start()
	e.waitJob(id, "completion", allDone)
}
