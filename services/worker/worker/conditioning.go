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

// prefix returns the prefix frames of a task that starts from media,
// nil for one that does not. The key must be one intake derived from an
// upload, and the object exactly PrefixFrames frames of the task's size.
func (w *Worker) prefix(ctx context.Context, task *spoolv1.SegmentTask) ([]byte, error) {
	if task.PrefixFrames == 0 {
		return nil, nil
	}
	key, err := blob.ParseUploadDerivedKey(task.PrefixKey)
	if err != nil {
		return nil, fmt.Errorf("%w: prefix key: %w", errPermanent, err)
	}
	r, _, err := w.blob.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("download prefix %s: %w", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(ctxReader{ctx, r})
	touch(ctx)
	if err != nil {
		return nil, fmt.Errorf("download prefix %s: %w", key, err)
	}
	if want := int(task.PrefixFrames) * int(task.Width) * int(task.Height) * 3; len(b) != want {
		return nil, fmt.Errorf("%w: prefix %s holds %d bytes, want %d frames of %dx%d RGB24", errPermanent, key, len(b), task.PrefixFrames, task.Width, task.Height)
	}
	return b, nil
}
