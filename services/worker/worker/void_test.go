package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// tailWait is the tests' SPOOL_WORKER_TAIL_WAIT: far longer than they
// wait for anything, so that a segment that waited it out fails them.
const tailWait = 2 * time.Minute

// seen is a result of a job, and when the test saw it.
type seen struct {
	r  *spoolv1.SegmentResult
	at time.Time
}

// results collects a job's results from core NATS as they are published.
func (e *env) results(t *testing.T, job string) (next func(within time.Duration, want func(*spoolv1.SegmentResult) bool) seen) {
	t.Helper()
	subject, _ := bus.ResultsSubject(job)
	sub, err := e.bus.Conn().SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	var got []seen
	return func(within time.Duration, want func(*spoolv1.SegmentResult) bool) seen {
		t.Helper()
		deadline := time.Now().Add(within)
		for _, s := range got {
			if want(s.r) {
				return s
			}
		}
		for {
			m, err := sub.NextMsg(time.Until(deadline))
			if err != nil {
				t.Fatalf("results so far %v: %v", got, err)
			}
			r, err := bus.DecodeResult(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			s := seen{r, time.Now()}
			if got = append(got, s); want(r) {
				return s
			}
		}
	}
}

func is(phase spoolv1.Phase, idx, attempt uint32) func(*spoolv1.SegmentResult) bool {
	return func(r *spoolv1.SegmentResult) bool {
		return r.GetPhase() == phase && r.GetIndex() == idx && r.GetAttempt() == attempt
	}
}

// TestRefusedTailVoidsItsHandOff: the store refuses segment 0's first
// tail. After its short retry (SPOOL_WORKER_STORE_RETRY) the worker
// publishes TAIL_VOID at once; segment 1, released on that tail and
// waiting for it (from the store on the other worker, or running on the
// tail in memory on the same one), stops at once and is handed back
// uncounted (CONDITIONING), without waiting its SPOOL_WORKER_TAIL_WAIT;
// segment 0 is redone (its attempt counted as transient) and segment 1 is
// released again on the new attempt's tail. The video is whole.
func TestRefusedTailVoidsItsHandOff(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	job := fmt.Sprintf("refused-%d", time.Now().UnixNano()%1e9)
	const retry = 300 * time.Millisecond
	e.twoWorkers(t, slowTails{refuse: "/" + job + "/seg/0/a1/"}, tailWait, retry)
	next := e.results(t, job)
	e.submit(t, `{"id":"`+job+`","prompt":"x","durationFrames":25,"windowFrames":9,"overlapFrames":1,"model":"sim",`+
		`"width":64,"height":64,"steps":3,"fps":24,"pool":"`+e.pool+`"}`)
	void := next(30*time.Second, is(spoolv1.Phase_PHASE_TAIL_VOID, 0, 1))
	tail0, _ := blob.SegmentTail(job, 0, 1)
	if void.r.GetTailKey() != string(tail0) || !strings.Contains(void.r.GetErrorMessage(), "upload tail") {
		t.Fatalf("TAIL_VOID %+v", void.r)
	}
	stopped := next(30*time.Second, is(spoolv1.Phase_PHASE_FAILED, 1, 1))
	if stopped.r.GetErrorClass() != spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING {
		t.Fatalf("segment 1's first attempt: %+v", stopped.r)
	}
	// At once: a correctness bound, far below the tail wait, not a speed.
	if took := stopped.at.Sub(void.at); took > 20*time.Second {
		t.Fatalf("segment 1 stopped %v after the void", took)
	}
	t.Logf("segment 1 stopped %v after the void (tail wait %v)", stopped.at.Sub(void.at), tailWait)
	segs := e.waitDone(t, job)
	e.checkFragments(t, segs, 25)
	ctx := context.Background()
	a0, _ := e.store.ListAttempts(ctx, job, 0)
	a1, _ := e.store.ListAttempts(ctx, job, 1)
	if segs[0].CommittedAttempt < 2 || len(a0) < 2 || a0[0].ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT.String() ||
		!strings.Contains(a0[0].ErrorMsg, "upload tail") {
		t.Fatalf("segment 0: committed a%d, attempts %+v", segs[0].CommittedAttempt, a0)
	}
	want1, _ := blob.SegmentTail(job, 0, uint32(segs[0].CommittedAttempt))
	if len(a1) < 2 || a1[0].ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING.String() || segs[1].ConditioningKey != string(want1) {
		t.Fatalf("segment 1 on %q (want %q), attempts %+v", segs[1].ConditioningKey, want1, a1)
	}
	if j, _ := e.store.GetJob(ctx, job); j.State.Terminal() && j.ErrorMessage != "" {
		t.Fatalf("job %+v", j)
	}
}

// TestVoidStopsAWaitingSlot: a slot waiting in the store for its task's
// conditioning tail (made on another process, never stored) stops the
// moment the dispatcher's void reaches it on core NATS, and hands the
// attempt back as CONDITIONING; a task still on that tail, fetched after
// the void, fails at once; a void of another tail changes nothing.
func TestVoidStopsAWaitingSlot(t *testing.T) {
	e := newEnv(t)
	id := "vw-" + e.pool[:6]
	w, err := worker.New(worker.Config{ID: id, Pool: e.pool, Backend: "sim", Slots: 1, Heartbeat: time.Second,
		Register: 100 * time.Millisecond, TailWait: tailWait}, e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	e.run(t, "worker", w.Run)
	ctx := context.Background()
	job := fmt.Sprintf("voidwait-%d", time.Now().UnixNano()%1e9)
	next := e.results(t, job)
	tail, _ := blob.SegmentTail(job, 0, 1)
	task := func(attempt uint32) *spoolv1.SegmentTask {
		prefix, _ := blob.AttemptPrefix(job, 1, attempt)
		return &spoolv1.SegmentTask{JobId: job, Index: 1, Attempt: attempt, FirstFrame: 8, Frames: 9, Overlap: 1, Prompt: "x", Seed: 1,
			Model: "sim", Width: 64, Height: 64, Fps: 24, Steps: 3, Mode: spoolv1.Mode_MODE_CHAIN, ConditioningKey: string(tail),
			OutputPrefix: string(prefix), Pool: e.pool, Deadline: timestamppb.New(time.Now().Add(tailWait))}
	}
	if _, err := e.bus.PublishTask(ctx, task(1)); err != nil {
		t.Fatal(err)
	}
	// Wait until the slot holds the task: it is waiting for the tail.
	kv, err := e.bus.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := job + "/1/1"
	for deadline := time.Now().Add(30 * time.Second); ; {
		if en, err := kv.Get(ctx, e.pool+"."+id); err == nil {
			if info, err := bus.DecodeWorkerInfo(en.Value()); err == nil && slices.Contains(info.CurrentTasks, held) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never took the task")
		}
		time.Sleep(20 * time.Millisecond)
	}
	other, _ := blob.SegmentTail(job, 0, 2)
	if err := e.bus.PublishVoid(ctx, job, string(other)); err != nil {
		t.Fatal(err)
	}
	voided := time.Now()
	if err := e.bus.PublishVoid(ctx, job, string(tail)); err != nil {
		t.Fatal(err)
	}
	r := next(30*time.Second, is(spoolv1.Phase_PHASE_FAILED, 1, 1))
	if r.r.GetErrorClass() != spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING || !strings.Contains(r.r.GetErrorMessage(), "void") {
		t.Fatalf("the waiting attempt ended %+v", r.r)
	}
	t.Logf("the waiting slot stopped %v after the void (tail wait %v)", r.at.Sub(voided), tailWait)
	if took := r.at.Sub(voided); took > 20*time.Second {
		t.Fatalf("the waiting slot stopped %v after the void", took)
	}
	if _, err := e.bus.PublishTask(ctx, task(2)); err != nil {
		t.Fatal(err)
	}
	r = next(30*time.Second, is(spoolv1.Phase_PHASE_FAILED, 1, 2))
	if r.r.GetErrorClass() != spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING {
		t.Fatalf("a task on the void tail ended %+v", r.r)
	}
}
