package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

// TestFramesDone: a job's FramesDone is the new frames of its committed
// segments (overlap and trim excluded): a duplicate DONE adds nothing and a
// reopened commit takes its frames back; once the job has a final video,
// FramesMade is the video's.
func TestFramesDone(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 3) // 121-frame windows, 37 of overlap
	nj.Segments[0].Overlap, nj.Segments[2].Trim = 0, 4
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	id := nj.Job.ID
	done := func(idx, attempt int) store.SegmentDone {
		return store.SegmentDone{JobID: id, Index: idx, Attempt: attempt, VideoKey: fmt.Sprintf("jobs/%s/seg/%d/a%d/video.m4s", id, idx, attempt),
			SHA256: strings.Repeat("a", 64), Bytes: 100, Frames: 84}
	}
	frames := func() int64 {
		t.Helper()
		j, err := s.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return j.FramesMade()
	}
	steps := []struct {
		name string
		do   func() error
		want int64
	}{
		{"nothing committed", func() error { return nil }, 0},
		{"segment 0: its whole window", func() error { _, err := s.CommitDoneBatch(ctx, []store.SegmentDone{done(0, 1)}, nil); return err }, 121},
		{"segments 1 and 2 and a duplicate", func() error {
			_, err := s.CommitDoneBatch(ctx, []store.SegmentDone{done(1, 1), done(2, 1), done(0, 2)}, nil)
			return err
		}, 121 + 84 + 80},
		{"segment 1 reopened", func() error {
			_, err := s.RetrySegment(ctx, store.Retry{JobID: id, Index: 1, Attempt: 1, Outcome: store.OutcomeFailed, Reopen: true})
			return err
		}, 121 + 80},
		{"segment 1 again", func() error { _, err := s.CommitDoneBatch(ctx, []store.SegmentDone{done(1, 2)}, nil); return err }, 121 + 84 + 80},
		{"the final video", func() error {
			_, err := s.FinishJob(ctx, store.Final{JobID: id, Key: "jobs/" + id + "/final.mp4", SHA256: strings.Repeat("b", 64), Bytes: 9,
				Frames: 285, Segments: 3})
			return err
		}, 285},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := frames(); got != st.want {
			t.Fatalf("%s: %d frames made, want %d", st.name, got, st.want)
		}
	}
}

// liveJob is a live job of segments planned segments, segment 0 ready.
func liveJob(t *testing.T, segments int) store.NewJob {
	nj := newJob(t, segments)
	nj.Job.Live, nj.Job.TotalFrames, nj.Job.SegmentsTotal, nj.Job.LiveAheadS = true, 0, 0, 2
	nj.Job.Pool = "live-" + nj.Job.ID[max(0, len(nj.Job.ID)-20):]
	for i := range nj.Segments {
		nj.Segments[i].Pool = nj.Job.Pool
	}
	nj.Segments[0].State = store.SegReady
	nj.Outbox = nil
	return nj
}

// TestLiveClock: admitting a live job's segment 0 starts its clock once;
// StartLiveClock returns it, starting it only when admission has not; a
// bounded job has none.
func TestLiveClock(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := liveJob(t, 2)
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if n, err := s.AdmitReady(ctx, nj.Job.Pool, 8, 0, 0, func(sg store.Segment) (store.OutboxMsg, error) {
		return store.OutboxMsg{MsgID: nj.Job.ID + ".task", Subject: "spool.segments." + nj.Job.Pool, Payload: []byte{0}}, nil
	}); err != nil || n != 1 {
		t.Fatalf("admitted %d: %v", n, err)
	}
	j, err := s.GetJob(ctx, nj.Job.ID)
	if err != nil || j.LiveStartAt == nil || j.LiveStartAt.Before(before) || j.LiveAheadS != 2 {
		t.Fatalf("after admission: clock %v, live_ahead_s %v, %v", j.LiveStartAt, j.LiveAheadS, err)
	}
	for range 2 {
		at, err := s.StartLiveClock(ctx, nj.Job.ID)
		if err != nil || !at.Equal(*j.LiveStartAt) {
			t.Fatalf("StartLiveClock %v, %v; want the admission's %v", at, err, *j.LiveStartAt)
		}
	}
	other := liveJob(t, 1)
	if _, err := s.CreateJob(ctx, other); err != nil {
		t.Fatal(err)
	}
	first, err := s.StartLiveClock(ctx, other.Job.ID)
	if again, err2 := s.StartLiveClock(ctx, other.Job.ID); err != nil || err2 != nil || !again.Equal(first) {
		t.Fatalf("a clock started twice: %v then %v (%v, %v)", first, again, err, err2)
	}
	bounded := newJob(t, 1)
	if _, err := s.CreateJob(ctx, bounded); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartLiveClock(ctx, bounded.Job.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a bounded job's clock: %v, want ErrNotFound", err)
	}
}

// TestDelayedRelease: a segment released with a NotBefore (a paced live
// segment) has its task published only once due, and counts as queued from
// then: the reconciler's stale query does not see it before.
func TestDelayedRelease(t *testing.T) {
	s := open(t, freshDB(t)) // its own outbox
	ctx := context.Background()
	nj := liveJob(t, 2)
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	due := time.Now().Add(time.Hour)
	msg := store.OutboxMsg{MsgID: nj.Job.ID + ".1.1.task", Subject: "spool.segments." + nj.Job.Pool, Payload: []byte{1}, NotBefore: due}
	if ok, err := s.ReleaseSegment(ctx, store.Release{JobID: nj.Job.ID, Index: 1, Attempt: 1, ConditioningKey: "jobs/" + nj.Job.ID + "/seg/0/a1/tail.bin",
		Outbox: []store.OutboxMsg{msg}, NotBefore: due}); err != nil || !ok {
		t.Fatalf("release: %v %v", ok, err)
	}
	n, err := s.PublishOutbox(ctx, 10, func(m []store.OutboxMsg) (int, error) { return len(m), nil })
	if err != nil || n != 0 {
		t.Fatalf("published %d before it was due: %v", n, err)
	}
	if next, err := s.NextOutbox(ctx); err != nil || !next.Round(time.Millisecond).Equal(due.Round(time.Millisecond)) {
		t.Fatalf("next outbox row due %v, want %v (%v)", next, due, err)
	}
	stale, err := s.StaleSegments(ctx, []string{nj.Job.Pool}, time.Now().Add(time.Minute), 10)
	if err != nil || len(stale) != 0 {
		t.Fatalf("stale before it was due: %+v, %v", stale, err)
	}
	sg, err := s.GetSegment(ctx, nj.Job.ID, 1)
	if err != nil || sg.State != store.SegQueued || !sg.UpdatedAt.Round(time.Millisecond).Equal(due.Round(time.Millisecond)) {
		t.Fatalf("segment %+v, %v", sg, err)
	}
}
