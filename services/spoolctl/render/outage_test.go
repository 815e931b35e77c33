package render_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/spoolctl/render"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// outageTailWait is the workers' SPOOL_WORKER_TAIL_WAIT in the outage
// test: a segment that waited for a tail that never comes would take at
// least this long.
const outageTailWait = 2 * time.Minute

// TestMinIOOutageEqualsOracle: a chain job of many small segments runs on
// two spool-worker processes (two ref slots each) with the dispatcher's
// production retry settings; Postgres is restarted with a fast shutdown a
// quarter of the way, and at half way MinIO is killed with SIGKILL, stays
// down 5 s, and is restarted on the same data. The workers retry the store for 3 s only
// (SPOOL_WORKER_STORE_RETRY), less than the outage, so that tail uploads
// do fail for good and their hand-offs are voided. The job succeeds,
// decodes to exactly the oracle's frames, and ends far sooner after MinIO's
// return than one wait for a tail that never comes (SPOOL_WORKER_TAIL_WAIT)
// would take: a correctness bound, not a speed. A first job, without
// faults, gives the rate and wall time to compare with; the figures are
// logged.
func TestMinIOOutageEqualsOracle(t *testing.T) {
	st := devstacktest.Private(t, devstacktest.NATS, devstacktest.Postgres, devstacktest.MinIO)
	sys := &system{systest.On(t, devstacktest.ConnectTo(t, st, 0), 0, nil, func(c *dispatcher.Config) {
		c.RetryBackoff, c.ReconcileEvery, c.RunningStale, c.QueuedStale, c.PoolWindow = 2*time.Second, 10*time.Second,
			90*time.Second, 5*time.Minute, 32
	})}
	startWorkers(t, sys, 2, "SPOOL_WORKER_SLOTS=2", "SPOOL_WORKER_TAIL_WAIT="+outageTailWait.String(), "SPOOL_WORKER_STORE_RETRY=3s")
	const segments = 150
	spec := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"prompt":"a lighthouse in a storm","durationFrames":%d,"windowFrames":9,"overlapFrames":1,`+
			`"width":64,"height":64,"steps":2,"seed":5,"fps":24,"pool":%q}`, id, 8*segments+1, pool)
	}
	ctx := context.Background()

	base := track(t, sys, "outage-baseline", spec("outage-baseline"), nil)
	t.Logf("without faults: %d segments in %v, %.1f segments/s", segments, base.end.Sub(base.start).Round(time.Millisecond),
		base.rate(base.start, base.end))

	restart := func(part string) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := st.Restart(rctx, part); err != nil {
			t.Errorf("restart %s: %v", part, err)
		}
	}
	var down, up, pgDown, pgUp time.Time
	faulted := track(t, sys, "outage-minio", spec("outage-minio"), func(done int) bool {
		switch {
		case pgDown.IsZero() && done >= segments/4:
			pgDown = time.Now()
			if err := st.StopFast(devstack.PartPostgres); err != nil {
				t.Errorf("stop Postgres: %v", err)
				return true
			}
			restart(devstack.PartPostgres)
			pgUp = time.Now()
		case down.IsZero() && done >= segments/2:
			down = time.Now()
			if err := st.Kill(devstack.PartMinIO); err != nil {
				t.Errorf("kill MinIO: %v", err)
				return true
			}
			time.Sleep(5 * time.Second) // the outage itself
			restart(devstack.PartMinIO)
			up = time.Now()
			return true
		}
		return false
	})
	if up.IsZero() || pgUp.IsZero() {
		t.Fatal("Postgres and MinIO were not both stopped and restarted mid-job")
	}
	t.Logf("Postgres stopped (fast) at %d segments done, back %v later; %.1f segments/s in the 5 s before, %.1f in the 5 s after",
		faulted.doneAt(pgDown), pgUp.Sub(pgDown).Round(time.Millisecond), faulted.rate(pgDown.Add(-5*time.Second), pgDown),
		faulted.rate(pgUp, pgUp.Add(5*time.Second)))
	before := faulted.rate(down.Add(-5*time.Second), down)
	t.Logf("MinIO killed at %d segments done, back %v later (%d done then); the job ended %v after MinIO's return",
		faulted.doneAt(down), up.Sub(down).Round(time.Millisecond), faulted.doneAt(up), faulted.end.Sub(up).Round(time.Millisecond))
	t.Logf("rate in the 5 s before MinIO's kill %.1f segments/s; back to 80%% of it (over 2 s) %v after MinIO's return; %.1f segments/s from its return to the end",
		before, faulted.fullRateAfter(up, before).Round(time.Millisecond), faulted.rate(up, faulted.end))
	t.Logf("job wall time: %v with the faults, %v without", faulted.end.Sub(faulted.start).Round(time.Millisecond),
		base.end.Sub(base.start).Round(time.Millisecond))
	t.Logf("segments/s per 5 s without faults: %v", base.timeline(5*time.Second))
	t.Logf("segments/s per 5 s with them (Postgres down %v–%v, MinIO %v–%v): %v", pgDown.Sub(faulted.start).Round(time.Second),
		pgUp.Sub(faulted.start).Round(time.Second), down.Sub(faulted.start).Round(time.Second), up.Sub(faulted.start).Round(time.Second),
		faulted.timeline(5*time.Second))
	classes, failed := attemptClasses(t, sys.Store, "outage-minio", segments)
	t.Logf("attempts of the faulted job: %v", classes)
	for _, f := range failed {
		t.Logf("  %s", f)
	}
	if after := faulted.end.Sub(up); after > time.Minute {
		t.Fatalf("the job ended %v after MinIO's return: something waited for a tail that never came (tail wait %v)", after, outageTailWait)
	}
	sys.compareWith(t, "outage-minio", spec("outage-minio"), 8*segments+1, render.Options{}, time.Minute)
}

// startWorkers starts n spool-worker processes of pool on sys's stack, with
// the extra SPOOL_* settings env; they are killed when the test ends.
func startWorkers(t *testing.T, sys *system, n int, env ...string) {
	t.Helper()
	bin := devstacktest.Binary(t, "../../worker/cmd/spool-worker")
	for i := range n {
		id := fmt.Sprintf("outage-w%d", i)
		startWorkerProcess(t, bin, id, append(append(devstacktest.ServiceEnv(t, sys.Stack, bus.RoleWorker, pool, id), "SPOOL_WORKER_ID="+id, "SPOOL_WORKER_POOL="+pool,
			"SPOOL_WORKER_BACKEND=ref", "SPOOL_LOG_LEVEL=warn"), env...)...)
	}
	kv, err := sys.Bus.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		registered := 0
		for i := range n {
			if _, err := kv.Get(context.Background(), fmt.Sprintf("%s.outage-w%d", pool, i)); err == nil {
				registered++
			}
		}
		if registered == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d workers registered within a minute", registered, n)
		}
	}
}

// progress is a job's segments done over time.
type progress struct {
	start, end time.Time
	mu         sync.Mutex
	at         []time.Time
	done       []int
}

// track submits spec (job id) and samples its segments done every 50 ms
// until it succeeds (within 5 minutes); fault, when given, is called with
// each sample, in its own goroutine, until it returns true.
func track(t *testing.T, sys *system, id, spec string, fault func(done int) bool) *progress {
	t.Helper()
	p := &progress{start: time.Now()}
	sys.submit(t, spec)
	faulting := make(chan int, 1)
	faultDone := make(chan struct{})
	go func() {
		defer close(faultDone)
		if fault == nil {
			return
		}
		for done := range faulting {
			if fault(done) {
				return
			}
		}
	}()
	defer func() { close(faulting); <-faultDone }()
	deadline := p.start.Add(5 * time.Minute)
	for {
		j, err := sys.Store.GetJob(context.Background(), id)
		now := time.Now()
		if err == nil {
			p.mu.Lock()
			p.at, p.done = append(p.at, now), append(p.done, j.SegmentsDone)
			p.mu.Unlock()
			select {
			case faulting <- j.SegmentsDone:
			default:
			}
			if j.State == store.JobSucceeded {
				p.end = now
				return p
			}
			if j.State.Terminal() {
				t.Fatalf("job %s %s: %s", id, j.State, j.ErrorMessage)
			}
		}
		if now.After(deadline) {
			t.Fatalf("job %s did not succeed within 5 minutes (%d segments done)", id, p.doneAt(now))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// doneAt is the segments done at the last sample no later than at.
func (p *progress) doneAt(at time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i, a := range p.at {
		if a.After(at) {
			break
		}
		n = p.done[i]
	}
	return n
}

// rate is segments done per second between from and to.
func (p *progress) rate(from, to time.Time) float64 {
	if !to.After(from) {
		return 0
	}
	return float64(p.doneAt(to)-p.doneAt(from)) / to.Sub(from).Seconds()
}

// timeline is the job's rate in consecutive windows of step from its start.
func (p *progress) timeline(step time.Duration) []string {
	var out []string
	for at := p.start; at.Before(p.end); at = at.Add(step) {
		to := at.Add(step)
		if to.After(p.end) {
			to = p.end
		}
		out = append(out, fmt.Sprintf("%.1f", p.rate(at, to)))
	}
	return out
}

// fullRateAfter is how long after from the job first ran at 80% of rate
// or more over 2 s (or until its end, when less remained).
func (p *progress) fullRateAfter(from time.Time, rate float64) time.Duration {
	const window = 2 * time.Second
	for at := from; at.Before(p.end); at = at.Add(50 * time.Millisecond) {
		to := at.Add(window)
		if to.After(p.end) {
			return at.Sub(from)
		}
		if p.rate(at, to) >= 0.8*rate {
			return at.Sub(from)
		}
	}
	return p.end.Sub(from)
}

// attemptClasses counts a job's attempts by outcome and failure class, and
// describes each failed one.
func attemptClasses(t *testing.T, s *store.Store, id string, segments int) (map[string]int, []string) {
	t.Helper()
	n := map[string]int{}
	var failed []string
	for i := range segments {
		as, err := s.ListAttempts(context.Background(), id, i)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			k := string(a.Outcome)
			if a.ErrorClass != "" {
				k += " " + a.ErrorClass
				msg := a.ErrorMsg
				if len(msg) > 160 {
					msg = msg[:160] + "…"
				}
				failed = append(failed, fmt.Sprintf("%d/a%d %s %s: %s", i, a.Attempt, a.Outcome, a.ErrorClass, msg))
			}
			n[k]++
		}
	}
	return n, failed
}
