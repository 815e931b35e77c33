package stitcher_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestStoppedLiveJobIsFinalized: a live job stopped after some of its
// segments were committed gets its final video with them, even when the
// stitcher saw neither their DONEs nor the stop (it was down): its sweep
// finds the job.
func TestStoppedLiveJobIsFinalized(t *testing.T) {
	e := newEnv(t)
	id := unique("stopped")
	submit(t, e, fmt.Sprintf(`{"id":"%s","prompt":"x","model":"sim","live":true,"windowFrames":9,"overlapFrames":3,`+
		`"width":%d,"height":%d,"steps":1,"fps":24,"pool":"%s"}`, id, w, h, e.pool))
	tasks := []*spoolv1.SegmentTask{e.nextChain(t, false), e.nextChain(t, false)}
	e.waitCommitted(t, id, 2)
	ctx := context.Background()
	if err := e.bus.PublishCancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for j, _ := e.store.GetJob(ctx, id); j.State != store.JobCancelled; j, _ = e.store.GetJob(ctx, id) {
		if time.Now().After(deadline) {
			t.Fatalf("the stop was not recorded: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.loseDones(t) // the stitcher was down through all of it
	e.stitcher(t, "s1")
	j := e.waitFinal(t, id)
	check(t, e.final(t, j), expectChain(tasks))
	if j.FinalFrames != 9+6 || j.SegmentsTotal != 2 || j.SegmentsDone != 2 {
		t.Fatalf("final %d frames, %d of %d segments; want 15, 2 of 2", j.FinalFrames, j.SegmentsDone, j.SegmentsTotal)
	}
}

// waitFinal waits for a stopped live job's final video (the job goes from
// cancelled to succeeded once it has one).
func (e *env) waitFinal(t *testing.T, id string) store.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := e.store.GetJob(context.Background(), id)
		if err == nil && j.FinalKey != "" {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stopped live job %s was not finalized: %+v, %v", id, j, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
