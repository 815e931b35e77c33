package dispatcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

var zeroTime time.Time

func worker(r *spoolv1.SegmentResult) store.Worker {
	return store.Worker{WorkerID: r.GetWorkerId(), Node: r.GetNode(), GPUUUID: r.GetGpuUuid(), GPUName: r.GetGpuName(),
		Backend: r.GetBackend(), Model: r.GetModel(), ModelVersion: r.GetModelVersion()}
}

// consumeResults keeps a pull request of up to 256 results open and applies
// them in groups: the first to arrive at once (a TAIL_READY is a hand-off),
// together with whatever has already arrived behind it. TAIL_READY,
// TAIL_VOID and FAILED are applied one by one, in order; a group's DONEs are committed
// together in one transaction. Every path is idempotent: a result delivered
// twice changes nothing the second time.
func (d *Dispatcher) consumeResults(ctx context.Context, c jetstream.Consumer) error {
	for ctx.Err() == nil {
		batch, err := c.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			d.fetchFailed(ctx, "fetch results", err)
			continue
		}
		ch := batch.Messages()
		for m := range ch {
			group := []jetstream.Msg{m}
		more:
			for len(group) < 256 {
				select {
				case n, ok := <-ch:
					if !ok {
						break more
					}
					group = append(group, n)
				default:
					break more
				}
			}
			d.applyResults(ctx, group)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			d.fetchFailed(ctx, "fetch results batch", err)
		}
	}
	return nil
}

type pending struct {
	msg jetstream.Msg
	res *spoolv1.SegmentResult
	ctx context.Context
}

func (d *Dispatcher) applyResults(ctx context.Context, msgs []jetstream.Msg) {
	var dones []pending
	for _, m := range msgs {
		mctx := bus.ContextFromMsg(ctx, m)
		r, err := bus.DecodeResult(m.Data())
		if err != nil {
			d.log.Error("dropping an undecodable result", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		switch r.GetPhase() {
		case spoolv1.Phase_PHASE_DONE:
			dones = append(dones, pending{m, r, mctx})
			continue
		case spoolv1.Phase_PHASE_TAIL_READY:
			err = d.onTailReady(mctx, r)
		case spoolv1.Phase_PHASE_FAILED:
			err = d.onFailed(mctx, r)
		case spoolv1.Phase_PHASE_TAIL_VOID:
			err = d.onTailVoid(mctx, r)
		default:
			d.log.Error("dropping a result without a phase", "job", r.GetJobId(), "segment", r.GetIndex())
			_ = m.Term()
			continue
		}
		d.settle(m, r, err)
	}
	if len(dones) > 0 {
		d.onDones(ctx, dones)
	}
	d.wake()
}

// settle acks a handled result, terms one for an unknown segment, and naks
// a failure for redelivery.
func (d *Dispatcher) settle(m jetstream.Msg, r *spoolv1.SegmentResult, err error) {
	switch {
	case err == nil:
		_ = m.Ack()
	case errors.Is(err, store.ErrNotFound):
		d.log.Warn("result for an unknown segment", "job", r.GetJobId(), "segment", r.GetIndex())
		_ = m.Term()
	default:
		d.log.Error("applying a result; it will be redelivered", "job", r.GetJobId(), "segment", r.GetIndex(), "err", err)
		_ = m.NakWithDelay(time.Second)
	}
}

// onDones commits a batch of DONE results, each job's progress and event
// with them, in one transaction; later duplicates are recorded and ignored.
// In a chain, DONE also releases the next segment, in case its TAIL_READY
// was lost.
func (d *Dispatcher) onDones(ctx context.Context, ps []pending) {
	ds := make([]store.SegmentDone, len(ps))
	for i, p := range ps {
		r, t := p.res, p.res.GetTimings()
		ds[i] = store.SegmentDone{JobID: r.GetJobId(), Index: int(r.GetIndex()), Attempt: int(r.GetAttempt()),
			VideoKey: r.GetVideoKey(), SHA256: r.GetSha256(), Bytes: int64(r.GetBytes()), Frames: int(r.GetFrames()),
			Worker: worker(r), Timings: store.Timings{QueueMS: int(t.GetQueueMs()), DenoiseMS: int(t.GetDenoiseMs()),
				DecodeMS: int(t.GetDecodeMs()), EncodeMS: int(t.GetEncodeMs()), UploadMS: int(t.GetUploadMs())}}
	}
	committed, err := d.store.CommitDoneBatch(ctx, ds, func(job string, p store.Progress) (store.OutboxMsg, error) {
		return eventMsg(ctx, fmt.Sprintf("%s.done.%d", job, p.SegmentsDone), &spoolv1.JobEvent{
			JobId: job, State: jobState(p.State), Progress: p.Progress, SegmentsDone: uint32(p.SegmentsDone),
			SegmentsTotal: uint32(p.SegmentsTotal), Message: fmt.Sprintf("%d segments done", p.SegmentsDone)})
	})
	if err != nil {
		for _, p := range ps {
			d.settle(p.msg, p.res, err)
		}
		return
	}
	d.wakeAdmit()
	for i, p := range ps {
		var err error
		if committed[i] {
			err = d.releaseNext(p.ctx, p.res.GetJobId(), int(p.res.GetIndex()), p.res.GetTailKey())
		}
		d.settle(p.msg, p.res, err)
	}
}

func (d *Dispatcher) markRunning(ctx context.Context, job string) error {
	moved, err := d.store.SetJobState(ctx, job, []store.JobState{store.JobQueued}, store.JobRunning)
	if err != nil || !moved {
		return err
	}
	ev, err := eventMsg(ctx, job+".running", &spoolv1.JobEvent{JobId: job, State: spoolv1.JobState_JOB_STATE_RUNNING, Message: "first segment started"})
	if err != nil {
		return err
	}
	return d.store.AddOutbox(ctx, ev)
}

// onTailReady releases the next chain segment at once, conditioned on this
// tail, in the same transaction that records the tail: the hand-off the
// critical path depends on. With the next template read ahead, that is one
// round trip to Postgres; the task is published straight after commit, or,
// for a live job ahead of its pace, by the outbox when it falls due.
func (d *Dispatcher) onTailReady(ctx context.Context, r *spoolv1.SegmentResult) error {
	job, idx := r.GetJobId(), int(r.GetIndex())
	tr := store.TailReady{JobID: job, Index: idx, Attempt: int(r.GetAttempt()), TailKey: r.GetTailKey(), Worker: worker(r)}
	p, err := d.pace(ctx, job)
	if err != nil {
		return err
	}
	var first bool
	var msg *store.OutboxMsg
	if tpl, ok := d.tpl.take(job, idx+1); ok {
		m, err := d.taskMsg(ctx, tpl, 1, r.GetTailKey(), p.notBefore(tpl, time.Now()))
		if err != nil {
			return err
		}
		var released bool
		if first, released, err = d.store.HandOffPrepared(ctx, tr, m); err != nil {
			return err
		}
		if released {
			msg = &m
		} else if err := d.releaseNext(ctx, job, idx, r.GetTailKey()); err != nil {
			return err // pending after a void of its first attempt: released as its next one
		}
	} else {
		var err error
		first, msg, err = d.store.HandOff(ctx, tr, func(next store.Segment) (store.OutboxMsg, error) {
			return d.taskMsg(ctx, next.Task, next.Attempts, r.GetTailKey(), p.notBefore(next.Task, time.Now()))
		})
		if err != nil {
			return err
		}
	}
	if msg != nil {
		d.publishNow(ctx, *msg)
		next, err := d.store.GetSegment(ctx, job, idx+1)
		if err != nil {
			return err
		}
		if err := d.planAhead(ctx, job, next); err != nil {
			return err
		}
		d.prefetch(ctx, job, idx+2)
	}
	if first {
		return d.markRunning(ctx, job)
	}
	return nil
}

// releaseNext queues chain segment idx+1 with tailKey as its conditioning,
// as its next attempt (1, or one past an attempt stopped by a void), paced
// like a hand-off, planning live jobs further ahead. Releasing twice is a
// no-op.
func (d *Dispatcher) releaseNext(ctx context.Context, job string, idx int, tailKey string) error {
	if tailKey == "" {
		return nil
	}
	next, err := d.store.GetSegment(ctx, job, idx+1)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the last segment
	}
	if err != nil || next.State != store.SegPending {
		return err
	}
	p, err := d.pace(ctx, job)
	if err != nil {
		return err
	}
	msg, err := d.taskMsg(ctx, next.Task, next.Attempts+1, tailKey, p.notBefore(next.Task, time.Now()))
	if err != nil {
		return err
	}
	released, err := d.store.ReleaseSegment(ctx, store.Release{JobID: job, Index: idx + 1, Attempt: next.Attempts + 1, ConditioningKey: tailKey,
		Outbox: []store.OutboxMsg{msg}, NotBefore: msg.NotBefore})
	if err != nil {
		return err
	}
	if released {
		d.publishNow(ctx, msg)
	}
	return d.planAhead(ctx, job, next)
}

// planAhead keeps a live job planned LiveAhead segments past seg. The plan
// is derived again from the stored spec: it is a pure function of it.
func (d *Dispatcher) planAhead(ctx context.Context, job string, seg store.Segment) error {
	j, err := d.store.GetJob(ctx, job)
	if err != nil || !j.Live {
		return err
	}
	var spec spoolv1.JobSpec
	if err := protojson.Unmarshal(j.Spec, &spec); err != nil {
		return fmt.Errorf("stored spec of %s: %w", job, err)
	}
	norm, err := jobspec.Validate(&spec, d.catalog)
	if err != nil {
		return fmt.Errorf("stored spec of %s: %w", job, err)
	}
	ahead, err := norm.Plan.Ahead(int64(seg.Index)+1, d.cfg.LiveAhead)
	if err != nil {
		return err
	}
	rows, err := segmentRows(norm, job, ahead, templateTraceparent(seg.Task), Inputs{})
	if err != nil {
		return err
	}
	return d.store.AppendSegments(ctx, job, rows)
}

// maxReturned bounds how often one segment may be given back unstarted
// or unfinished (RETURNED), or retried on a newer tail (CONDITIONING),
// before its job fails: those do not count against the attempts, but a
// segment must not circulate for ever.
const maxReturned = 20

// uncounted says whether a failure of class does not count against the
// segment's attempts: its worker gave the task back, or its conditioning
// was not in the store yet; neither says anything of the segment.
func uncounted(class spoolv1.ErrorClass) bool {
	return class == spoolv1.ErrorClass_ERROR_CLASS_RETURNED || class == spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING
}

// onFailed retries a failed attempt with backoff, or fails the job when the
// failure is permanent or the attempts are spent. A TRANSIENT or STALLED
// attempt (its engine made no progress for the worker's stall timeout, or
// passed the task's deadline) counts and is retried with backoff; an
// ABANDONED one (its worker went away) counts and is retried at once.
// Attempts a worker gave back (RETURNED: it was shutting down) or that
// found no conditioning are retried at once and do not count against
// SPOOL_DISPATCHER_MAX_ATTEMPTS.
func (d *Dispatcher) onFailed(ctx context.Context, r *spoolv1.SegmentResult) error {
	job, idx, attempt := r.GetJobId(), int(r.GetIndex()), int(r.GetAttempt())
	class := r.GetErrorClass()
	if class == spoolv1.ErrorClass_ERROR_CLASS_CANCELLED { // the job was cancelled: record it, retry nothing
		return d.store.FinishAttempt(ctx, job, idx, attempt, store.OutcomeFailed, class.String(), r.GetErrorMessage(), worker(r))
	}
	earlierFree, err := d.uncountedBefore(ctx, job, idx, attempt)
	if err != nil {
		return err
	}
	seg, err := d.store.GetSegment(ctx, job, idx)
	if err != nil {
		return err
	}
	free, conditioning := uncounted(class), seg.ConditioningKey
	switch {
	case class == spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING:
		newer, err := d.newestTail(ctx, job, idx, seg.ConditioningKey)
		if err != nil {
			return err
		}
		free, conditioning = newer != "", cmp.Or(newer, conditioning)
	case seg.ConditioningKey != "":
		// Any other retry of a chain segment whose predecessor is done
		// is conditioned on the committed tail, which DONE waited for:
		// the tail it had may have died unuploaded with the worker that
		// handed it off, and each attempt would wait for it again.
		committed, err := d.committedTail(ctx, job, idx)
		if err != nil {
			return err
		}
		conditioning = cmp.Or(committed, conditioning)
	}
	counted := attempt - earlierFree // this attempt included, unless it is free itself
	retry := class != spoolv1.ErrorClass_ERROR_CLASS_PERMANENT && counted < d.cfg.MaxAttempts
	if free {
		counted--
		retry = earlierFree+1 < maxReturned
	}
	if retry {
		// An abandoned, returned or re-conditioned attempt (its worker was
		// killed, lost, drained or stopped; its tail was not in the store
		// yet) says nothing about the segment: it is retried at once.
		delay, outcome, notBefore := d.cfg.RetryBackoff<<max(counted-1, 0), store.OutcomeFailed, time.Now()
		if class == spoolv1.ErrorClass_ERROR_CLASS_ABANDONED || free {
			delay, outcome, notBefore = 0, store.OutcomeAbandoned, zeroTime
		}
		reopen := class == spoolv1.ErrorClass_ERROR_CLASS_CORRUPT // the stitcher rejected a committed output
		if reopen {
			delay, notBefore = 0, zeroTime
		}
		msg, err := d.taskMsg(ctx, seg.Task, attempt+1, conditioning, notBefore.Add(delay))
		if err != nil {
			return err
		}
		retried, err := d.store.RetrySegment(ctx, store.Retry{JobID: job, Index: idx, Attempt: attempt, Outcome: outcome, Reopen: reopen,
			ErrorClass: class.String(), ErrorMsg: r.GetErrorMessage(), Worker: worker(r), Outbox: []store.OutboxMsg{msg},
			Conditioning: conditioning})
		if err == nil && retried {
			d.metrics.failed(ctx, r.GetPool(), class, 1)
			d.log.Info("segment retry", "job", job, "segment", idx, "attempt", attempt+1, "in", delay, "after", r.GetErrorMessage())
		}
		if err == nil && !retried && class == spoolv1.ErrorClass_ERROR_CLASS_RETURNED {
			// Settled already, as abandoned when its task was delivered
			// again: the worker did hand it back, but its result came late.
			late, err := d.store.ReturnedLate(ctx, job, idx, attempt, class.String(),
				r.GetErrorMessage()+" (reported after the task was delivered again)")
			if late {
				d.log.Info("attempt handed back, reported late", "job", job, "segment", idx, "attempt", attempt)
			}
			return err
		}
		return err
	}
	reason := fmt.Sprintf("segment %d failed (attempt %d of %d, %s): %s", idx, counted, d.cfg.MaxAttempts,
		class.String(), r.GetErrorMessage())
	if free {
		reason = fmt.Sprintf("segment %d was given back or re-conditioned %d times (%s): %s", idx, earlierFree+1, class.String(), r.GetErrorMessage())
	} else if earlierFree > 0 {
		reason += fmt.Sprintf(" (and %d attempts given back or re-conditioned, not counted)", earlierFree)
	}
	code := "unavailable"
	if class == spoolv1.ErrorClass_ERROR_CLASS_PERMANENT {
		code = "invalid_argument"
	}
	ev, err := eventMsg(ctx, job+".failed", &spoolv1.JobEvent{JobId: job, State: spoolv1.JobState_JOB_STATE_FAILED,
		Segment: uint32(idx), SegmentSet: true, Message: reason, ErrorCode: code})
	if err != nil {
		return err
	}
	failed, err := d.store.FailJob(ctx, store.Failure{JobID: job, Index: idx, Attempt: attempt, ErrorClass: class.String(),
		ErrorCode: code, ErrorMsg: reason, Worker: worker(r), Outbox: []store.OutboxMsg{ev}})
	if err != nil || !failed {
		return err
	}
	d.metrics.failed(ctx, r.GetPool(), class, 1)
	d.metrics.jobFinished(ctx, "failed")
	d.log.Warn("job failed", "job", job, "reason", reason)
	d.wakeAdmit()
	return d.bus.PublishCancel(ctx, job) // stop its other segments' workers
}

// newestTail is the tail to condition segment idx on when its conditioning
// could not be read: that of segment idx−1's committed attempt when it is
// done (its DONE waited for the upload), else of its latest attempt, which
// is uploading it or will. It returns "" when that is the tail segment idx
// already had and the previous segment is done: the object is gone, and
// conditioning on it again cannot help.
func (d *Dispatcher) newestTail(ctx context.Context, job string, idx int, current string) (string, error) {
	if idx == 0 {
		return "", nil
	}
	prev, err := d.store.GetSegment(ctx, job, idx-1)
	if err != nil {
		return "", err
	}
	attempt := prev.Attempts
	if prev.State == store.SegDone && prev.CommittedAttempt > 0 {
		attempt = prev.CommittedAttempt
	}
	key, err := blob.SegmentTail(job, uint32(idx-1), uint32(attempt))
	if err != nil {
		return "", err
	}
	if string(key) == current && prev.State == store.SegDone {
		return "", nil
	}
	return string(key), nil
}

// committedTail is the tail of segment idx−1's committed attempt when
// that segment is done, else "".
func (d *Dispatcher) committedTail(ctx context.Context, job string, idx int) (string, error) {
	if idx == 0 {
		return "", nil
	}
	prev, err := d.store.GetSegment(ctx, job, idx-1)
	if err != nil || prev.State != store.SegDone || prev.CommittedAttempt < 1 {
		return "", err
	}
	key, err := blob.SegmentTail(job, uint32(idx-1), uint32(prev.CommittedAttempt))
	return string(key), err
}

// uncountedBefore counts the attempts of a segment before attempt that do
// not count against its attempts (uncounted).
func (d *Dispatcher) uncountedBefore(ctx context.Context, job string, idx, attempt int) (int, error) {
	if attempt <= 1 {
		return 0, nil
	}
	atts, err := d.store.ListAttempts(ctx, job, idx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range atts {
		if a.Attempt < attempt && uncounted(spoolv1.ErrorClass(spoolv1.ErrorClass_value[a.ErrorClass])) {
			n++
		}
	}
	return n, nil
}

func jobState(s store.JobState) spoolv1.JobState {
	switch s {
	case store.JobQueued:
		return spoolv1.JobState_JOB_STATE_QUEUED
	case store.JobRunning:
		return spoolv1.JobState_JOB_STATE_RUNNING
	case store.JobSucceeded:
		return spoolv1.JobState_JOB_STATE_SUCCEEDED
	case store.JobFailed:
		return spoolv1.JobState_JOB_STATE_FAILED
	case store.JobCancelled:
		return spoolv1.JobState_JOB_STATE_CANCELLED
	case store.JobRejected:
		return spoolv1.JobState_JOB_STATE_REJECTED
	}
	return spoolv1.JobState_JOB_STATE_UNSPECIFIED
}
