package worker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/infer"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// delivery is one task message held by this worker, from fetch to settle.
// While it is held and progresses (watchdog.go), AckProgress keeps it
// ours; the registry lists it, and a cancellation of its job cancels ctx.
type delivery struct {
	w      *Worker
	slot   *slot
	msg    jetstream.Msg
	task   *spoolv1.SegmentTask
	key    string // "<job>/<segment>/<attempt>", as the reconciler reads it
	queued time.Duration
	ctx    context.Context // carries watch, for the segment's work to report progress
	cancel context.CancelFunc
	watch  *watch

	handedBack atomic.Bool // the drain timeout took the segment back
	settled    atomic.Bool // FAILED or DONE went out (or will): by settle, or by the watchdog
	stop       chan struct{}
	stopped    chan struct{}

	tail     atomic.Pointer[tailEntry] // the tail this attempt handed off, once it has
	condLost atomic.Pointer[error]     // the tail it runs on from memory was voided
}

// accept decodes a fetched message and decides whether it is run. A task
// delivered before is settled as abandoned: its earlier delivery ran
// somewhere that never settled it (a killed worker, a drain hand-back), and
// the dispatcher retries it at once as a new attempt, so that lineage shows
// every attempt. A task of a cancelled job is settled as cancelled.
func (w *Worker) accept(ctx context.Context, s *slot, m jetstream.Msg) *delivery {
	task, err := bus.DecodeTask(m.Data())
	if err != nil {
		w.log.Error("dropping an undecodable task", "err", err)
		_ = m.Term()
		return nil
	}
	var queued time.Duration
	var enqueued time.Time
	received := time.Now()
	meta, err := m.Metadata()
	if err == nil {
		enqueued = meta.Timestamp
		queued = received.Sub(enqueued)
	}
	if err == nil && meta.NumDelivered > 1 {
		w.abandon(bus.ContextFromMsg(ctx, m), nil, task, m, deliveredAgain(meta.NumDelivered))
		return nil
	}
	if w.cancelled.has(task.JobId) {
		w.fail(bus.ContextFromMsg(ctx, m), nil, task, spoolv1.ErrorClass_ERROR_CLASS_CANCELLED, errors.New("the job was cancelled before the segment started"))
		_ = m.Ack()
		w.metrics.settled(ctx, task.Pool, "cancelled")
		return nil
	}
	// The segment outlives a shutdown request: drain lets it finish.
	d := &delivery{w: w, slot: s, msg: m, task: task, queued: queued, stop: make(chan struct{}), stopped: make(chan struct{}),
		key: fmt.Sprintf("%s/%d/%d", task.JobId, task.Index, task.Attempt)}
	d.watch = newWatch(w.stallTimeoutFor(task.Model), task, queued)
	d.ctx, d.cancel = context.WithCancel(withWatch(queueSpan(bus.ContextFromMsg(context.WithoutCancel(ctx), m), s, task, enqueued, received), d.watch))
	w.hold(d)
	go d.heartbeat(ctx)
	return d
}

// heartbeat watches the delivery until it is settled. Every
// cfg.Heartbeat it sends AckProgress, as long as the segment progresses
// (watchdog.go). No progress for the slot's stall timeout, or the task's
// deadline passed, stalls it: the segment is cancelled, and if it has not
// returned cfg.StallGrace later, the watchdog settles it and gives the
// slot up. Once the worker is told to stop (ctx), the segment has
// cfg.Drain to finish before it is cancelled and handed back.
func (d *delivery) heartbeat(ctx context.Context) {
	defer close(d.stopped)
	cfg := d.w.cfg
	beat := time.NewTicker(cfg.Heartbeat)
	defer beat.Stop()
	_, next := d.watch.verdict(time.Now())
	check := time.NewTimer(next)
	defer check.Stop()
	shutdown := ctx.Done()
	var drain, grace <-chan time.Time
	for {
		select {
		case <-d.stop:
			return
		case now := <-beat.C:
			// A stalled segment's task is still this worker's to settle
			// while its grace runs: were it delivered again meanwhile,
			// another worker would settle it ABANDONED first.
			if why, _ := d.watch.verdict(now); grace != nil || (why == "" && d.watch.stalled() == "") {
				_ = d.msg.InProgress()
			}
		case now := <-check.C:
			why, next := d.watch.verdict(now)
			if why == "" {
				check.Reset(next)
				continue
			}
			d.watch.why.Store(&why)
			d.w.log.Warn("segment stalled: cancelling it", "job", d.task.JobId, "segment", d.task.Index,
				"attempt", d.task.Attempt, "slot", d.slot.id, "why", why, "grace", cfg.StallGrace)
			d.cancel()
			grace = time.After(cfg.StallGrace)
		case <-shutdown:
			shutdown, drain = nil, time.After(cfg.Drain)
		case <-drain:
			d.handedBack.Store(true)
			d.cancel()
		case <-grace:
			select {
			case <-d.stop: // it returned just now
				return
			default:
			}
			d.wedged()
			return
		}
	}
}

// wedged settles a stalled delivery whose segment did not return within
// the grace after its cancel, FAILED(STALLED), and gives its slot up: the
// engine (or whatever holds the segment) may never return, and only a
// restart of the process frees its GPU context.
func (d *delivery) wedged() {
	if !d.settled.CompareAndSwap(false, true) {
		return
	}
	w, t := d.w, d.task
	err := fmt.Errorf("stalled: %s; it did not return within %v of its cancel, so the worker gives the engine up and exits to restart with a fresh GPU context",
		d.watch.stalled(), w.cfg.StallGrace)
	w.log.Error("segment did not return after its cancel: giving the engine up", "job", t.JobId, "segment", t.Index,
		"attempt", t.Attempt, "slot", d.slot.id, "err", err)
	w.settleFailed(d.ctx, d, spoolv1.ErrorClass_ERROR_CLASS_STALLED, err, d.msg.Term)
	w.metrics.settled(context.WithoutCancel(d.ctx), t.Pool, "stalled")
	w.release(d)
	w.giveUp(d.slot, fmt.Errorf("%w: slot %s, segment %s: %w", ErrEngineWedged, d.slot.id, d.key, err))
}

// settle ends the delivery according to err: ack after DONE; FAILED(stalled)
// plus Term for a segment the watchdog cancelled; Term plus FAILED for a
// task that can never succeed; FAILED(cancelled) plus ack for a cancelled
// job; FAILED(returned) for a segment handed back on drain;
// FAILED(conditioning) for a segment whose conditioning tail could not be
// read or was voided; and FAILED(transient) for anything else (a tail that
// never reached the store included), which the dispatcher retries with
// backoff as a new attempt. Should FAILED not go out, the message is Nak'ed
// and its redelivery settles it. A delivery the watchdog already settled
// (its segment returned after the grace) is only released.
//
// A failing attempt that handed its tail off first waits for the tail's
// upload to end (it is bounded by cfg.StoreRetry): the next segment may run
// on that tail, and a void, if it fails, goes out before this verdict.
func (d *delivery) settle(ctx context.Context, err error) {
	var tailErr error
	if e := d.tail.Load(); e != nil && err != nil {
		<-e.uploaded
		tailErr = e.err
	}
	close(d.stop)
	<-d.stopped
	w, t := d.w, d.task
	defer func() {
		w.release(d)
		d.cancel()
	}()
	if !d.settled.CompareAndSwap(false, true) {
		w.log.Info("a given-up segment returned", "job", t.JobId, "segment", t.Index, "attempt", t.Attempt, "err", err)
		return
	}
	switch {
	case err == nil:
		_ = d.msg.Ack()
		w.metrics.settled(ctx, t.Pool, "done")
	case d.watch.stalled() != "":
		w.log.Warn("segment stalled; it will be retried", "job", t.JobId, "segment", t.Index, "attempt", t.Attempt, "err", err)
		w.settleFailed(ctx, d, spoolv1.ErrorClass_ERROR_CLASS_STALLED, fmt.Errorf("stalled: %s; cancelled: %w", d.watch.stalled(), err), d.msg.Term)
		w.metrics.settled(ctx, t.Pool, "stalled")
	case d.handedBack.Load():
		w.log.Info("drain timeout: segment handed back", "job", t.JobId, "segment", t.Index)
		w.giveBack(context.WithoutCancel(d.ctx), d.slot, t, d.msg, "handed back: its worker was draining and the segment outran the drain timeout")
	case tailErr != nil && !w.cancelled.has(t.JobId):
		w.log.Warn("segment's tail never reached the store; it will be redone", "job", t.JobId, "segment", t.Index, "attempt", t.Attempt, "err", tailErr)
		w.settleFailed(ctx, d, spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT, tailErr, d.msg.Term)
		w.metrics.settled(ctx, t.Pool, "failed")
	case d.condLost.Load() != nil || errors.Is(err, errConditioning):
		if lost := d.condLost.Load(); lost != nil {
			err = *lost
		}
		w.log.Warn("segment's conditioning unavailable; it will be retried on the newest tail", "job", t.JobId, "segment", t.Index, "err", err)
		w.settleFailed(ctx, d, spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING, err, d.msg.Term)
		w.metrics.settled(ctx, t.Pool, "failed")
	case errors.Is(err, errPermanent):
		w.settleFailed(ctx, d, spoolv1.ErrorClass_ERROR_CLASS_PERMANENT, err, d.msg.Term)
		w.metrics.settled(ctx, t.Pool, "failed")
	case d.ctx.Err() != nil && (errors.Is(err, infer.ErrCancelled) || errors.Is(err, context.Canceled)):
		w.settleFailed(ctx, d, spoolv1.ErrorClass_ERROR_CLASS_CANCELLED, err, d.msg.Ack)
		w.metrics.settled(ctx, t.Pool, "cancelled")
	default:
		w.log.Warn("segment failed; it will be retried", "job", t.JobId, "segment", t.Index, "attempt", t.Attempt, "err", err)
		w.settleFailed(ctx, d, spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT, err, d.msg.Term)
		w.metrics.settled(ctx, t.Pool, "failed")
	}
}

// followConditioning stops the delivery as soon as e, the tail it runs on
// from this process's memory, is void (its upload failed for good): the
// segment could never be DONE on it, and the dispatcher runs it again on
// the previous segment's next tail. settle reports it as CONDITIONING.
func (d *delivery) followConditioning(e *tailEntry) {
	go func() {
		select {
		case <-e.uploaded:
			if e.err != nil {
				err := fmt.Errorf("%w: the tail it runs on is void: %w", errConditioning, e.err)
				d.condLost.Store(&err)
				d.cancel()
			}
		case <-d.ctx.Done():
		}
	}()
}

// voidTail reports that the tail delivery d handed off will never be in the
// store (its upload failed for good: err): TAIL_VOID goes out at once, so
// that the dispatcher voids the hand-off, stops whoever waits for the tail
// and redoes the segment; then d is cancelled, since it can never be DONE.
// Should TAIL_VOID not go out, the segments waiting for the tail fall back
// to their bounded tail wait.
func (w *Worker) voidTail(d *delivery, key string, err error) {
	t := d.task
	w.log.Warn("tail upload failed for good: voiding its hand-off", "job", t.JobId, "segment", t.Index, "attempt", t.Attempt,
		"tail", key, "err", err)
	r := w.result(d.slot, t, spoolv1.Phase_PHASE_TAIL_VOID)
	r.TailKey, r.ErrorClass, r.ErrorMessage = key, spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT, err.Error()
	if perr := w.publishResult(context.WithoutCancel(d.ctx), r); perr != nil {
		w.log.Error("publish TAIL_VOID", "job", t.JobId, "segment", t.Index, "err", perr)
	}
	d.cancel()
}

// settleFailed publishes FAILED and then settles the message with then; if
// FAILED cannot be published, the message is Nak'ed instead.
func (w *Worker) settleFailed(ctx context.Context, d *delivery, class spoolv1.ErrorClass, err error, then func() error) {
	tctx := context.WithoutCancel(d.ctx) // the attempt's trace
	failSpan(tctx, d.slot, d.task, class, err)
	if w.fail(tctx, d.slot, d.task, class, err) != nil {
		_ = d.msg.NakWithDelay(2 * time.Second)
		return
	}
	_ = then()
}

// abandon reports an attempt that its worker never settled (it was
// killed, or lost) and terminates its message; the dispatcher starts the
// next attempt at once, and counts this one. s is the slot that ran it, or
// nil when that worker is gone: the result then carries no worker identity.
func (w *Worker) abandon(ctx context.Context, s *slot, t *spoolv1.SegmentTask, m jetstream.Msg, why string) {
	w.unsettled(ctx, s, t, m, spoolv1.ErrorClass_ERROR_CLASS_ABANDONED, "abandoned", why)
}

// giveBack returns a task with no verdict on its segment (this worker is
// shutting down): the dispatcher starts the next attempt at once and does
// not count this one.
func (w *Worker) giveBack(ctx context.Context, s *slot, t *spoolv1.SegmentTask, m jetstream.Msg, why string) {
	w.unsettled(ctx, s, t, m, spoolv1.ErrorClass_ERROR_CLASS_RETURNED, "returned", why)
}

// deliveredAgain is why a redelivered task's earlier attempt is abandoned.
func deliveredAgain(n uint64) string {
	return fmt.Sprintf("delivered again (delivery %d): the worker that held it went away without settling it", n)
}

// returnUnstarted gives back a task that slot s fetched ahead and never
// started, as the worker stops: RETURNED, unless it was a redelivery, which
// accept would have settled as abandoned.
func (w *Worker) returnUnstarted(ctx context.Context, s *slot, m jetstream.Msg) {
	task, err := bus.DecodeTask(m.Data())
	if err != nil {
		w.log.Error("dropping an undecodable task", "err", err)
		_ = m.Term()
		return
	}
	tctx := bus.ContextFromMsg(context.WithoutCancel(ctx), m)
	if meta, err := m.Metadata(); err == nil && meta.NumDelivered > 1 {
		w.abandon(tctx, nil, task, m, deliveredAgain(meta.NumDelivered))
		return
	}
	w.giveBack(tctx, s, task, m, "returned unstarted: its worker was shutting down with the task fetched ahead")
}

// unsettled publishes FAILED(class) for an attempt that will not finish
// here and terminates its message; should FAILED not go out, the message is
// Nak'ed, and its redelivery settles it as abandoned.
func (w *Worker) unsettled(ctx context.Context, s *slot, t *spoolv1.SegmentTask, m jetstream.Msg, class spoolv1.ErrorClass, outcome, why string) {
	w.log.Info("attempt "+outcome, "job", t.JobId, "segment", t.Index, "attempt", t.Attempt, "why", why)
	if w.fail(ctx, s, t, class, errors.New(why)) != nil {
		_ = m.Nak()
		return
	}
	_ = m.Term()
	w.metrics.settled(ctx, t.Pool, outcome)
}

// fail publishes FAILED for the attempt; s is nil when no slot of this
// worker ran it.
func (w *Worker) fail(ctx context.Context, s *slot, t *spoolv1.SegmentTask, class spoolv1.ErrorClass, err error) error {
	r := &spoolv1.SegmentResult{JobId: t.JobId, Index: t.Index, Attempt: t.Attempt, Phase: spoolv1.Phase_PHASE_FAILED, Pool: t.Pool}
	if s != nil {
		r = w.result(s, t, spoolv1.Phase_PHASE_FAILED)
	}
	r.ErrorClass, r.ErrorMessage = class, err.Error()
	if perr := w.publishResult(context.WithoutCancel(ctx), r); perr != nil {
		w.log.Error("publish FAILED", "job", t.JobId, "segment", t.Index, "err", perr)
		return perr
	}
	return nil
}

// hold registers a delivery: cancellable by its job, listed in the registry.
func (w *Worker) hold(d *delivery) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[d.task.JobId] == nil {
		w.running[d.task.JobId] = map[string]context.CancelFunc{}
	}
	w.running[d.task.JobId][d.key] = d.cancel
	w.tasksChanged()
}

func (w *Worker) release(d *delivery) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.running[d.task.JobId], d.key)
	if len(w.running[d.task.JobId]) == 0 {
		delete(w.running, d.task.JobId)
	}
	w.tasksChanged()
}
