package dispatcher_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestTasksJoinTheJobTrace: every task of a job carries the job's trace
// context (the span that planned it, recorded with the job), whatever path
// publishes it: admission, a retry after a failure, the reconciler after
// JetStream lost the task. A worker's spans for it are then in the job's
// trace.
func TestTasksJoinTheJobTrace(t *testing.T) {
	e := newEnv(t)
	e.cfg.QueuedStale, e.cfg.RunningStale = 100*time.Millisecond, 100*time.Millisecond
	d, _ := e.start()
	ctx := context.Background()
	id := e.submit(spec(e, ""))
	c, err := e.bus.DeclarePool(ctx, e.pool())
	if err != nil {
		t.Fatal(err)
	}
	take := func(path string) *spoolv1.SegmentTask {
		t.Helper()
		m, err := bus.FetchOne(ctx, c, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: no task: %v", path, err)
		}
		_ = m.Ack()
		task, err := bus.DecodeTask(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		j, err := e.store.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		tp := bus.HeaderCarrier(m.Headers()).Get("traceparent")
		if j.Traceparent == "" || j.TraceID == "" || !strings.Contains(j.Traceparent, j.TraceID) || tp != j.Traceparent {
			t.Fatalf("%s: task %d/%d has traceparent %q; the job's trace is %q (%q)", path, task.Index, task.Attempt, tp, j.Traceparent, j.TraceID)
		}
		return task
	}
	first := take("admission")
	if _, err := e.bus.PublishResult(ctx, &spoolv1.SegmentResult{JobId: id, Index: first.Index, Attempt: first.Attempt,
		Phase: spoolv1.Phase_PHASE_FAILED, Pool: first.Pool, ErrorClass: spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT,
		ErrorMessage: "harness failure"}); err != nil {
		t.Fatal(err)
	}
	take("retry")
	// JetStream loses the next attempt: only the reconciler can publish it.
	if _, err := e.bus.PublishResult(ctx, &spoolv1.SegmentResult{JobId: id, Index: first.Index, Attempt: first.Attempt + 1,
		Phase: spoolv1.Phase_PHASE_FAILED, Pool: first.Pool, ErrorClass: spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT,
		ErrorMessage: "harness failure"}); err != nil {
		t.Fatal(err)
	}
	e.waitJob(id, "the third attempt queued", func(_ store.Job, segs []store.Segment) bool { return segs[0].Attempts == 3 })
	waitPending(t, c, 1)
	s, _ := e.bus.JetStream().Stream(ctx, bus.StreamSegments)
	subject, _ := bus.SegmentsSubject(e.pool())
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if n, err := d.Reconcile(ctx); err != nil || n != 1 {
		t.Fatalf("reconcile re-published %d: %v", n, err)
	}
	take("reconciler")
}
