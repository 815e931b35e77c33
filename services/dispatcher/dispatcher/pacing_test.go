package dispatcher_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

// TestLiveJobIsPaced: a live job whose workers are far faster than real
// time generates at most live_ahead_s ahead of its live edge. The video a
// segment completes, measured by Postgres's timestamps (the live clock's
// start, each segment's tail and DONE), never exceeds the wall time elapsed
// since the clock started plus live_ahead_s plus that segment; and the
// bound survives a dispatcher restart (Postgres holds the clock and the
// delayed tasks).
func TestLiveJobIsPaced(t *testing.T) {
	e := newEnv(t)
	_, stop := e.start()
	w := &worker{}
	defer e.runWorker(w)()
	const fps, ahead = 24, 1.0
	id := e.submit(fmt.Sprintf(`{"prompt":"waves","live":true,"liveAheadS":%v,"fps":%d,"windowFrames":9,"overlapFrames":3,`+
		`"width":64,"height":64,"pool":"%s"}`, ahead, fps, e.pool()))
	e.waitJob(id, "four segments done", func(j store.Job, _ []store.Segment) bool { return j.SegmentsDone >= 4 })
	stop()
	d, _ := e.start()
	j, _ := e.waitJob(id, "twelve segments done", func(j store.Job, _ []store.Segment) bool { return j.SegmentsDone >= 12 })
	if ok, err := d.Cancel(context.Background(), id, "enough"); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if j.LiveStartAt == nil {
		t.Fatalf("job %s: the live clock never started", id)
	}
	ctx := context.Background()
	segs, err := e.store.ListSegments(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, s := range segs {
		if s.State != store.SegDone {
			continue
		}
		atts, err := e.store.ListAttempts(ctx, id, s.Index)
		if err != nil {
			t.Fatal(err)
		}
		var made *time.Time // the first sign the segment's frames exist
		for _, a := range atts {
			if a.Attempt == s.CommittedAttempt {
				made = a.StartedAt
			}
		}
		if made == nil {
			t.Fatalf("segment %d: no start time of its committed attempt", s.Index)
		}
		end := float64(s.FirstFrame+int64(s.Frames-s.Trim)) / fps
		segment := float64(s.Frames-s.Overlap-s.Trim) / fps
		elapsed := made.Sub(*j.LiveStartAt).Seconds()
		if end > elapsed+ahead+segment+1e-3 {
			t.Errorf("segment %d made the video %.3f s long %.3f s after the live clock started: more than %.0f s ahead (+ a segment of %.3f s)",
				s.Index, end, elapsed, ahead, segment)
		}
		checked++
	}
	if checked < 12 {
		t.Fatalf("%d segments checked, want ≥ 12", checked)
	}
	if j.LiveAheadS != ahead {
		t.Fatalf("job %s: live_ahead_s %v recorded, want %v", id, j.LiveAheadS, ahead)
	}
}
