package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// errConditioning marks a segment whose conditioning tail could not be
// read: its upload, which runs behind the hand-off, never completed (the
// worker that made it died, or the store refused it). The dispatcher
// retries the segment on the previous segment's newest tail.
var errConditioning = errors.New("conditioning tail unavailable")

// conditioning returns a chain task's conditioning tail state: from this
// process's memory when one of its slots made it (the returned entry's
// upload must then succeed before the segment's DONE, so that a committed
// segment's conditioning is always in the store), or from the object
// store, waiting up to cfg.TailWait for an upload still under way.
func (w *Worker) conditioning(ctx context.Context, task *spoolv1.SegmentTask) ([]byte, *tailEntry, error) {
	if task.ConditioningKey == "" {
		return nil, nil, nil
	}
	key, err := blob.ParseTailKey(task.JobId, task.ConditioningKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: conditioning key: %w", errPermanent, err)
	}
	if e, ok := w.tails.get(string(key)); ok {
		return e.state, e, nil
	}
	deadline := time.Now().Add(w.cfg.TailWait)
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 250*time.Millisecond) {
		r, _, err := w.blob.Get(ctx, key)
		touch(ctx) // the store answered: the wait is the worker's, bounded by TailWait
		if err == nil {
			state, err := io.ReadAll(ctxReader{ctx, r})
			r.Close()
			if err != nil {
				return nil, nil, fmt.Errorf("download tail %s: %w", key, err)
			}
			return state, nil, nil
		}
		if !errors.Is(err, blob.ErrNotFound) {
			return nil, nil, fmt.Errorf("download tail %s: %w", key, err)
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%w: %s did not reach the store within %v", errConditioning, key, w.cfg.TailWait)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(pause):
		}
	}
}
