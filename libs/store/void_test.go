package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/store"
)

// TestVoidTail: a void stops the next segment's attempt conditioned on the
// tail and sends the segment back to pending; the segment's next
// TAIL_READY releases it again as a new attempt. A duplicate or late void
// changes nothing; a void reaching a segment already done queues the next
// one at once on the committed attempt's tail; a void of the committed
// attempt's own tail (which did reach the store) changes nothing.
func TestVoidTail(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 3)
	nj.Segments[0].State = store.SegQueued
	for i := range nj.Segments {
		nj.Segments[i].Task = []byte{byte(i + 1)}
	}
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	id := nj.Job.ID
	tail := func(seg, attempt int) string { return fmt.Sprintf("jobs/%s/seg/%d/a%d/tail.bin", id, seg, attempt) }
	next := func(sg store.Segment) (store.OutboxMsg, error) {
		return store.OutboxMsg{MsgID: fmt.Sprintf("%s.%d.%d.task", id, sg.Index, sg.Attempts), Subject: "spool.segments.default", Payload: sg.Task}, nil
	}
	var requeued []string
	void := func(seg, attempt int) store.Void {
		return store.Void{JobID: id, Index: seg, Attempt: attempt, TailKey: tail(seg, attempt), StoppedClass: "ERROR_CLASS_CONDITIONING",
			Reason: "void: upload failed", TailOf: func(a int) (string, error) { return tail(seg, a), nil },
			Requeue: func(n store.Segment, a int, cond string) (store.OutboxMsg, error) {
				requeued = append(requeued, fmt.Sprintf("%d/a%d on %s", n.Index, a, cond))
				return store.OutboxMsg{MsgID: fmt.Sprintf("%s.%d.%d.task", id, n.Index, a), Subject: "spool.segments.default", Payload: n.Task}, nil
			}}
	}
	if _, msg, err := s.HandOff(ctx, store.TailReady{JobID: id, Index: 0, Attempt: 1, TailKey: tail(0, 1)}, next); err != nil || msg == nil {
		t.Fatalf("hand-off: %v %v", msg, err)
	}
	got, err := s.VoidTail(ctx, void(0, 1))
	if err != nil || got.Stopped != 1 || got.Requeued != nil {
		t.Fatalf("void: %+v %v", got, err)
	}
	segs, _ := s.ListSegments(ctx, id)
	if segs[0].TailKey != "" || segs[0].State != store.SegRunning || segs[1].State != store.SegPending || segs[1].ConditioningKey != "" || segs[1].Attempts != 1 {
		t.Fatalf("after the void: %+v", segs[:2])
	}
	a1, _ := s.ListAttempts(ctx, id, 1)
	if len(a1) != 1 || a1[0].Outcome != store.OutcomeAbandoned || a1[0].ErrorClass != "ERROR_CLASS_CONDITIONING" || !strings.Contains(a1[0].ErrorMsg, "void") {
		t.Fatalf("segment 1's attempts %+v", a1)
	}
	arts, _ := s.ListArtifacts(ctx, id)
	for _, a := range arts {
		if a.Key == tail(0, 1) {
			t.Fatalf("the void tail is still an artifact: %+v", a)
		}
	}
	if again, err := s.VoidTail(ctx, void(0, 1)); err != nil || again != (store.Voided{}) {
		t.Fatalf("a duplicate void: %+v %v", again, err)
	}
	// The prepared hand-off does not reuse attempt 1; segment 0's next
	// attempt's TAIL_READY releases segment 1 as attempt 2.
	if _, err := s.RetrySegment(ctx, store.Retry{JobID: id, Index: 0, Attempt: 1, Outcome: store.OutcomeFailed, ErrorClass: "ERROR_CLASS_TRANSIENT"}); err != nil {
		t.Fatal(err)
	}
	prepared := store.OutboxMsg{MsgID: id + ".1.1.task.prepared", Subject: "spool.segments.default", Payload: []byte{1}}
	if _, released, err := s.HandOffPrepared(ctx, store.TailReady{JobID: id, Index: 0, Attempt: 2, TailKey: tail(0, 2)}, prepared); err != nil || released {
		t.Fatalf("prepared hand-off after a void: released %v %v", released, err)
	}
	first, msg, err := s.HandOff(ctx, store.TailReady{JobID: id, Index: 0, Attempt: 2, TailKey: tail(0, 2)}, next)
	if err != nil || msg == nil || msg.MsgID != id+".1.2.task" || first {
		t.Fatalf("hand-off after the void: first %v %+v %v", first, msg, err)
	}
	segs, _ = s.ListSegments(ctx, id)
	if segs[1].State != store.SegQueued || segs[1].Attempts != 2 || segs[1].ConditioningKey != tail(0, 2) {
		t.Fatalf("segment 1 released again: %+v", segs[1])
	}
	// A late void of the superseded tail changes nothing.
	if late, err := s.VoidTail(ctx, void(0, 1)); err != nil || late != (store.Voided{}) {
		t.Fatalf("a late void: %+v %v", late, err)
	}
	// Segment 1's tail of attempt 2 is void, but segment 1 is done with
	// attempt 3 by then: segment 2 is queued at once on attempt 3's tail.
	if _, msg, err := s.HandOff(ctx, store.TailReady{JobID: id, Index: 1, Attempt: 2, TailKey: tail(1, 2)}, next); err != nil || msg == nil {
		t.Fatalf("hand-off of segment 1: %v %v", msg, err)
	}
	if _, err := s.RetrySegment(ctx, store.Retry{JobID: id, Index: 1, Attempt: 2, Outcome: store.OutcomeFailed, ErrorClass: "ERROR_CLASS_TRANSIENT"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitDoneBatch(ctx, []store.SegmentDone{{JobID: id, Index: 1, Attempt: 3, VideoKey: fmt.Sprintf("jobs/%s/seg/1/a3/video.mp4", id),
		SHA256: strings.Repeat("a", 64), Frames: 84}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err = s.VoidTail(ctx, void(1, 2))
	if err != nil || got.Stopped != 1 || got.Requeued == nil || got.Requeued.MsgID != id+".2.2.task" ||
		len(requeued) != 1 || requeued[0] != "2/a2 on "+tail(1, 3) {
		t.Fatalf("void after DONE: %+v %v, requeued %v", got, err, requeued)
	}
	segs, _ = s.ListSegments(ctx, id)
	if segs[2].State != store.SegQueued || segs[2].Attempts != 2 || segs[2].ConditioningKey != tail(1, 3) {
		t.Fatalf("segment 2 requeued: %+v", segs[2])
	}
	// The committed attempt's tail is in the store: its "void" is stale.
	if stale, err := s.VoidTail(ctx, void(1, 3)); err != nil || stale != (store.Voided{}) {
		t.Fatalf("void of a committed tail: %+v %v", stale, err)
	}
	if _, err := s.VoidTail(ctx, store.Void{JobID: id, Index: 9, Attempt: 1, TailKey: tail(9, 1)}); err == nil {
		t.Fatal("a void of an unknown segment accepted")
	}
}
