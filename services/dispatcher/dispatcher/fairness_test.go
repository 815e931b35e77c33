package dispatcher_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestTenantsShareAPool: tenant A's 60-segment job is submitted first, then
// tenant B's 3-segment job. One slow worker serves the pool. B's job must
// finish long before A's: admission lets tenants take turns instead of
// queueing B behind all of A.
func TestTenantsShareAPool(t *testing.T) {
	e := newEnv(t)
	e.cfg.PoolWindow = 2
	e.start()
	var mu sync.Mutex
	doneOrder := []string{}
	w := &worker{fail: func(task *spoolv1.SegmentTask) spoolv1.ErrorClass {
		time.Sleep(15 * time.Millisecond) // a segment takes time
		mu.Lock()
		doneOrder = append(doneOrder, task.JobId)
		mu.Unlock()
		return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	}}
	big := e.submit(`{"prompt":"big","tenant":"a","mode":"MODE_INDEPENDENT","durationFrames":540,"windowFrames":13,"overlapFrames":4,` +
		`"width":64,"height":64,"pool":"` + e.pool() + `"}`)
	e.waitJob(big, "planned", func(j store.Job, segs []store.Segment) bool { return len(segs) == 60 })
	small := e.submit(`{"prompt":"small","tenant":"b","mode":"MODE_INDEPENDENT","durationFrames":27,"windowFrames":13,"overlapFrames":4,` +
		`"width":64,"height":64,"pool":"` + e.pool() + `"}`)
	defer e.runWorker(w)()
	e.waitJob(small, "completion", allDone)
	mu.Lock()
	bigBefore := 0
	for _, id := range doneOrder {
		if id == big {
			bigBefore++
		}
	}
	mu.Unlock()
	if bigBefore > 10 {
		t.Fatalf("tenant b's 3 segments waited behind %d of tenant a's 60", bigBefore)
	}
	t.Logf("tenant b finished after %d of tenant a's segments", bigBefore)
	j, _ := e.store.GetJob(context.Background(), big)
	if j.SegmentsDone == 60 {
		t.Fatal("the big job finished first")
	}
}

// TestTwoReplicas: two dispatchers serve one pool at once; every segment is
// released once (one attempt each) and every job completes.
func TestTwoReplicas(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.start()
	w := &worker{}
	defer e.runWorker(w)()
	var ids []string
	for range 6 {
		ids = append(ids, e.submit(spec(e, "")))
		ids = append(ids, e.submit(spec(e, `,"mode":"MODE_INDEPENDENT"`)))
	}
	for _, id := range ids {
		_, segs := e.waitJob(id, "completion", allDone)
		for _, s := range segs {
			attempts, _ := e.store.ListAttempts(context.Background(), id, s.Index)
			if len(attempts) != 1 || s.CommittedAttempt != 1 {
				t.Fatalf("job %s segment %d: %d attempts, committed %d", id, s.Index, len(attempts), s.CommittedAttempt)
			}
		}
	}
	seen := map[string]int{}
	for _, task := range w.seen() {
		seen[task.JobId+"/"+string(rune('0'+task.Index))+"/"+string(rune('0'+task.Attempt))]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("task %s delivered %d times", k, n)
		}
	}
}
