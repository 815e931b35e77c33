package dispatcher_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

// TestLiveJobIsPlannedAhead: an unbounded job gets segments a few at a
// time as it runs, and ends when cancelled.
func TestLiveJobIsPlannedAhead(t *testing.T) {
	e := newEnv(t)
	d, _ := e.start()
	w := &worker{}
	stop := e.runWorker(w)
	id := e.submit(`{"prompt":"waves","live":true,"windowFrames":9,"overlapFrames":4,"width":64,"height":64,"pool":"` + e.pool() + `"}`)
	_, segs := e.waitJob(id, "ten segments done", func(j store.Job, segs []store.Segment) bool { return j.SegmentsDone >= 10 })
	stop()
	done := 0
	for _, s := range segs {
		if s.State == store.SegDone {
			done++
		}
	}
	if len(segs) > done+e.cfg.LiveAhead+2 {
		t.Fatalf("%d segments planned for %d done: live jobs must be planned only a few ahead", len(segs), done)
	}
	if ok, err := d.Cancel(context.Background(), id, "enough"); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	j, _ := e.waitJob(id, "cancelled", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobCancelled })
	if j.TotalFrames != 0 || !j.Live {
		t.Fatalf("live job %+v", j)
	}
}

// TestThousandQueuedJobsStayBounded: 1,000 queued jobs cost the dispatcher
// no memory of their own (Postgres holds them) and the pool's queue holds
// only the window.
func TestThousandQueuedJobsStayBounded(t *testing.T) {
	e := newEnv(t)
	e.cfg.PoolWindow = 16
	e.start()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range 1000 {
		e.submit(fmt.Sprintf(`{"prompt":"job %d","durationFrames":20,"windowFrames":9,"overlapFrames":4,"width":64,"height":64,"mode":"MODE_INDEPENDENT","pool":"%s"}`, i, e.pool()))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := e.store.CountSegments(context.Background(), store.SegReady)
		if err == nil && n >= 1000*3-16 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d segments ready", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c, _ := e.bus.DeclarePool(context.Background(), e.pool())
	info, _ := c.Info(context.Background())
	if info.NumPending > uint64(e.cfg.PoolWindow) {
		t.Fatalf("%d tasks in the pool's queue, window %d", info.NumPending, e.cfg.PoolWindow)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew %d KiB over 1,000 queued jobs; %d tasks queued", grew/1024, info.NumPending)
	if grew > 32<<20 {
		t.Fatalf("heap grew %d MiB over 1,000 queued jobs", grew>>20)
	}
}

// TestWideWindowIsAdmittedInChunks: a window wider than one admission
// transaction takes (a big pool) is filled by several, exactly to the
// window, and every admitted task reaches the pool's queue.
func TestWideWindowIsAdmittedInChunks(t *testing.T) {
	e := newEnv(t)
	e.cfg.PoolWindow = 1300
	e.start()
	const segments = 1500
	id := e.submit(fmt.Sprintf(`{"prompt":"wide","durationFrames":%d,"windowFrames":9,"overlapFrames":4,"width":64,"height":64,"mode":"MODE_INDEPENDENT","pool":"%s"}`,
		9+5*(segments-1), e.pool()))
	ctx := context.Background()
	c, err := e.bus.DeclarePool(ctx, e.pool())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		segs, err := e.store.ListSegments(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		queued := 0
		for _, s := range segs {
			if s.State == store.SegQueued {
				queued++
			}
		}
		if queued > e.cfg.PoolWindow {
			t.Fatalf("%d segments queued, window %d", queued, e.cfg.PoolWindow)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if queued == e.cfg.PoolWindow && info.NumPending == uint64(e.cfg.PoolWindow) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d segments queued and %d tasks in the pool's queue, want the window, %d", queued, info.NumPending, e.cfg.PoolWindow)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
