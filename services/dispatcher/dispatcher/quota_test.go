package dispatcher_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestRunningSegmentsQuota: with a running-segments quota of 2, a tenant's
// 12-segment job never has more than 2 segments queued or running (Postgres)
// nor in a worker's hands, although five workers are free, and completes.
// Another tenant with an override of 1 runs its chain job beside it, one
// segment at a time, and completes too: segments wait, they never fail.
func TestRunningSegmentsQuota(t *testing.T) {
	e := newEnv(t)
	e.cfg.PoolWindow = 16
	e.cfg.Quota.RunningSegments = 2
	ctx := context.Background()
	wide, narrow := e.pool()+"-wide", e.pool()+"-narrow"
	one := 1
	if _, err := e.store.SetQuota(ctx, store.Quota{Tenant: narrow, RunningSegments: &one}); err != nil {
		t.Fatal(err)
	}
	e.start()

	var mu sync.Mutex
	holding, most := map[string]int{}, map[string]int{} // segments in workers' hands, per job
	w := &worker{fail: func(task *spoolv1.SegmentTask) spoolv1.ErrorClass {
		mu.Lock()
		holding[task.JobId]++
		most[task.JobId] = max(most[task.JobId], holding[task.JobId])
		mu.Unlock()
		time.Sleep(30 * time.Millisecond) // a segment takes time
		mu.Lock()
		holding[task.JobId]--
		mu.Unlock()
		return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	}}
	for range 5 {
		defer e.runWorker(w)()
	}
	big := e.submit(`{"prompt":"wide","tenant":"` + wide + `","mode":"MODE_INDEPENDENT","durationFrames":108,"windowFrames":13,` +
		`"overlapFrames":4,"width":64,"height":64,"pool":"` + e.pool() + `"}`)
	chain := e.submit(`{"prompt":"narrow","tenant":"` + narrow + `","durationFrames":40,"windowFrames":13,"overlapFrames":4,` +
		`"width":64,"height":64,"pool":"` + e.pool() + `"}`)

	// Poll Postgres until both jobs are done: the tenants' segments queued
	// or running never pass their limits.
	peak := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		for tenant, limit := range map[string]int{wide: 2, narrow: 1} {
			u, err := e.store.QuotaUse(ctx, tenant, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			peak[tenant] = max(peak[tenant], u.RunningSegments)
			if u.RunningSegments > limit {
				t.Fatalf("tenant %s has %d segments queued or running: its limit is %d", tenant, u.RunningSegments, limit)
			}
		}
		jb, errB := e.store.GetJob(ctx, big)
		jc, errC := e.store.GetJob(ctx, chain)
		if errB == nil && errC == nil && jb.SegmentsTotal > 0 && jb.SegmentsDone == jb.SegmentsTotal && jc.SegmentsTotal > 0 &&
			jc.SegmentsDone == jc.SegmentsTotal {
			if jb.SegmentsTotal != 12 {
				t.Fatalf("the wide job has %d segments, want 12", jb.SegmentsTotal)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs not done: %s %d/%d (%v), %s %d/%d (%v)", big, jb.SegmentsDone, jb.SegmentsTotal, errB, chain, jc.SegmentsDone,
				jc.SegmentsTotal, errC)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if most[big] > 2 || most[chain] > 1 {
		t.Fatalf("workers held %d segments of the wide job at once (limit 2), %d of the chain (limit 1)", most[big], most[chain])
	}
	if most[big] < 1 || peak[wide] < 1 {
		t.Fatalf("never saw the wide job run: %d in hand, %d in Postgres", most[big], peak[wide])
	}
	for _, task := range w.seen() {
		if task.Attempt != 1 {
			t.Fatalf("segment %s/%d ran as attempt %d: a held segment must wait, not fail", task.JobId, task.Index, task.Attempt)
		}
	}
	t.Logf("peaks: wide job %d in hand, %d in Postgres; chain %d in hand", most[big], peak[wide], most[chain])
}
