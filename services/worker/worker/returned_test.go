package worker_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestPrefetchedTaskIsReturnedOnShutdown: a worker that stops while it
// holds a task fetched ahead (prefetch) lets the running segment finish
// and gives the unstarted one back as RETURNED, which the dispatcher
// retries at once without counting it: lineage shows the return and the
// next attempt, and no attempt is spent.
func TestPrefetchedTaskIsReturnedOnShutdown(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	id := "pf-" + e.pool[:6]
	// Three steps of 300 ms: the slot fetches ahead during the last one.
	stop := e.stoppable(t, worker.Config{ID: id, Pool: e.pool, Backend: "sim", Params: "step_ms=300", Slots: 1, Prefetch: time.Second,
		Heartbeat: time.Second, Drain: 10 * time.Second, Register: 50 * time.Millisecond})
	job := e.submit(t, `{"id":"prefetched-`+e.pool[:4]+`","prompt":"x","durationFrames":17,"windowFrames":9,"overlapFrames":1,"model":"sim",`+
		`"mode":"MODE_INDEPENDENT","width":64,"height":64,"steps":3,"fps":24,"pool":"`+e.pool+`"}`)
	// Stop once both tasks are delivered: one running, one fetched ahead.
	c, err := e.bus.DeclarePool(context.Background(), e.pool)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		info, err := c.Info(context.Background())
		if err == nil && info.NumAckPending == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker never fetched ahead: %+v, %v", info, err)
		}
	}
	stop(15 * time.Second)
	e.startWorker(t, 1)
	segs := e.waitDone(t, job)
	returned := 0
	for _, s := range segs {
		a, _ := e.store.ListAttempts(context.Background(), job, s.Index)
		switch {
		case len(a) == 1 && a[0].Outcome == store.OutcomeDone:
		case len(a) == 2 && a[0].Outcome == store.OutcomeAbandoned && a[0].ErrorClass == spoolv1.ErrorClass_ERROR_CLASS_RETURNED.String() &&
			strings.Contains(a[0].ErrorMsg, "returned unstarted") && strings.HasPrefix(a[0].Worker.WorkerID, id) &&
			a[1].Outcome == store.OutcomeDone && s.CommittedAttempt == 2:
			returned++
		default:
			t.Fatalf("segment %d: attempts %+v", s.Index, a)
		}
	}
	if returned != 1 {
		t.Fatalf("%d segments returned and redone, want 1", returned)
	}
}

// TestTaskArrivingAtStopIsReturned: a task that reaches an idle worker's
// pending fetch just after the worker was told to stop is given back as
// RETURNED (uncounted), not Nak'ed into a second delivery that would count
// as an abandoned attempt. The task must arrive while that fetch waits (it
// waits a second); a try where it did not (the task went to the worker
// started after) proves nothing and is made again, in a pool of its own.
func TestTaskArrivingAtStopIsReturned(t *testing.T) {
	for try := 1; try <= 5; try++ {
		var conclusive bool
		t.Run(strconv.Itoa(try), func(t *testing.T) { conclusive = taskArrivingAtStop(t) })
		if t.Failed() || conclusive {
			return
		}
	}
	t.Fatal("in five tries the task never reached the stopping worker's pending fetch")
}

// taskArrivingAtStop is one try of TestTaskArrivingAtStopIsReturned; it
// says whether the task reached the stopping worker.
func taskArrivingAtStop(t *testing.T) bool {
	e := newEnv(t)
	e.startDispatcher(t)
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // ids of this try alone, also under -count
	id := "as-" + run
	cancel, wait := e.cancellable(t, worker.Config{ID: id, Pool: e.pool, Backend: "sim", Slots: 1, Heartbeat: time.Second,
		Drain: 10 * time.Second, Register: 50 * time.Millisecond})
	c, err := e.bus.DeclarePool(context.Background(), e.pool)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		info, err := c.Info(context.Background())
		if err == nil && info.NumWaiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker never asked for a task: %+v, %v", info, err)
		}
	}
	cancel()
	job := e.submit(t, `{"id":"arriving-`+run+`","prompt":"x","durationFrames":9,"windowFrames":9,"overlapFrames":4,"model":"sim",`+
		`"width":64,"height":64,"steps":2,"fps":24,"pool":"`+e.pool+`"}`)
	wait(15 * time.Second)
	e.startWorker(t, 1)
	segs := e.waitDone(t, job)
	a, _ := e.store.ListAttempts(context.Background(), job, 0)
	switch {
	case len(a) == 1 && a[0].Outcome == store.OutcomeDone && strings.HasPrefix(a[0].Worker.WorkerID, "w-"):
		t.Logf("the task arrived after the stopping worker's fetch ended")
		return false
	case len(a) == 2 && a[0].Outcome == store.OutcomeAbandoned && a[0].ErrorClass == spoolv1.ErrorClass_ERROR_CLASS_RETURNED.String() &&
		strings.Contains(a[0].ErrorMsg, "returned unstarted") && strings.HasPrefix(a[0].Worker.WorkerID, id) &&
		a[1].Outcome == store.OutcomeDone && segs[0].CommittedAttempt == 2:
		return true
	}
	t.Fatalf("attempts %+v: want the first returned unstarted by %s, the second done", a, id)
	return false
}
