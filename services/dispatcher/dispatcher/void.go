package dispatcher

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// onTailVoid voids a hand-off whose tail will never be in the store (its
// upload failed for good, TAIL_VOID), so that no one waits for it:
//   - in Postgres, the next segment's attempt conditioned on the tail is
//     finished, uncounted (CONDITIONING), and the segment goes back to
//     pending, to be released again by this segment's next TAIL_READY; or,
//     when this segment is done already, it is queued at once on the
//     committed attempt's tail;
//   - on core NATS, every worker still waiting for the tail is told to
//     stop (spool.control.void.<job>);
//   - the attempt that made the tail cannot be DONE: it is failed,
//     counted as TRANSIENT, and retried with backoff like any such failure.
//
// A duplicate or late void (the attempt already superseded, the next
// segment no longer on that tail, the tail committed) changes nothing.
func (d *Dispatcher) onTailVoid(ctx context.Context, r *spoolv1.SegmentResult) error {
	job, idx, attempt := r.GetJobId(), int(r.GetIndex()), int(r.GetAttempt())
	key, err := blob.SegmentTail(job, r.GetIndex(), r.GetAttempt())
	if err != nil {
		return fmt.Errorf("%w: void: %w", store.ErrNotFound, err) // no such segment can exist: dropped
	}
	p, err := d.pace(ctx, job)
	if err != nil {
		return err
	}
	why := cmp.Or(r.GetErrorMessage(), "its upload failed")
	v, err := d.store.VoidTail(ctx, store.Void{JobID: job, Index: idx, Attempt: attempt, TailKey: string(key),
		StoppedClass: spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING.String(),
		Reason:       fmt.Sprintf("voided: the tail it was conditioned on, %s, will never be in the store (%s)", key, why),
		TailOf: func(a int) (string, error) {
			k, err := blob.SegmentTail(job, uint32(idx), uint32(a))
			return string(k), err
		},
		Requeue: func(next store.Segment, a int, cond string) (store.OutboxMsg, error) {
			return d.taskMsg(ctx, next.Task, a, cond, p.notBefore(next.Task, time.Now()))
		}})
	if err != nil {
		return err
	}
	if v.Requeued != nil {
		d.publishNow(ctx, *v.Requeued)
	}
	if v.Stopped > 0 {
		d.log.Info("hand-off voided", "job", job, "segment", idx, "attempt", attempt, "tail", key,
			"stopped", fmt.Sprintf("%d/%d", idx+1, v.Stopped), "requeued", v.Requeued != nil, "why", why)
	}
	// Workers hear of it whatever Postgres said: a task of the next segment
	// still on this tail, however stale, then fails at once.
	if err := d.bus.PublishVoid(ctx, job, string(key)); err != nil {
		d.log.Warn("publish void; waiting workers fall back to their tail wait", "job", job, "tail", key, "err", err)
	}
	f := proto.Clone(r).(*spoolv1.SegmentResult)
	f.Phase, f.ErrorClass = spoolv1.Phase_PHASE_FAILED, spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT
	f.ErrorMessage = fmt.Sprintf("its tail %s was voided: %s", key, why)
	return d.onFailed(ctx, f)
}
