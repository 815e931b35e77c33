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
// worker that made it died, or the store refused it and the hand-off was
// voided). The dispatcher hands the attempt back uncounted and runs the
// segment again on the previous segment's newest tail.
var errConditioning = errors.New("conditioning tail unavailable")

// conditioning returns a chain task's conditioning tail state: from this
// process's memory when one of its slots made it (the returned entry's
// upload must then succeed before the segment's DONE, so that a committed
// segment's conditioning is always in the store), or from the object
// store, waiting up to cfg.TailWait for an upload still under way. A tail
// that is void (its upload failed for good: the entry's, or the
// dispatcher's word on spool.control.void.<job>) ends the wait at once
// with errConditioning; so does a store failing for longer than
// cfg.StoreRetry, with a plain (transient) error.
func (w *Worker) conditioning(ctx context.Context, task *spoolv1.SegmentTask) ([]byte, *tailEntry, error) {
	if task.ConditioningKey == "" {
		return nil, nil, nil
	}
	key, err := blob.ParseTailKey(task.JobId, task.ConditioningKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: conditioning key: %w", errPermanent, err)
	}
	if e, ok := w.tails.get(string(key)); ok {
		if err := e.failed(); err != nil {
			return nil, nil, fmt.Errorf("%w: %s is void: %w", errConditioning, key, err)
		}
		return e.state, e, nil
	}
	void, stop := w.voids.watch(string(key))
	defer stop()
	voided := func() error { return fmt.Errorf("%w: %s is void: its upload failed for good", errConditioning, key) }
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-void:
			cancel()
		case <-gctx.Done():
		}
	}()
	deadline := time.Now().Add(w.cfg.TailWait)
	var failing time.Time // since when the store has been failing
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 250*time.Millisecond) {
		state, err := w.download(gctx, key)
		if err == nil { // it did reach the store: whatever a void says, it is good
			return state, nil, nil
		}
		if isClosed(void) {
			return nil, nil, voided()
		}
		switch {
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case errors.Is(err, blob.ErrNotFound):
			touch(ctx) // the store answered: the wait is the worker's, bounded by TailWait
			failing = time.Time{}
		case failing.IsZero():
			failing = time.Now()
		case time.Since(failing) > w.cfg.StoreRetry:
			return nil, nil, fmt.Errorf("download tail %s: %w", key, err)
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%w: %s did not reach the store within %v", errConditioning, key, w.cfg.TailWait)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-void:
			return nil, nil, voided()
		case <-time.After(pause):
		}
	}
}

// download reads a whole tail state.
func (w *Worker) download(ctx context.Context, key blob.Key) ([]byte, error) {
	r, _, err := w.blob.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	touch(ctx)
	b, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return nil, fmt.Errorf("download tail %s: %w", key, err)
	}
	return b, nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
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
	var b []byte
	err = retryStore(ctx, w.cfg.StoreRetry, func(ctx context.Context) error {
		r, _, err := w.blob.Get(ctx, key)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err = io.ReadAll(ctxReader{ctx, r})
		touch(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("download prefix %s: %w", key, err)
	}
	if want := int(task.PrefixFrames) * int(task.Width) * int(task.Height) * 3; len(b) != want {
		return nil, fmt.Errorf("%w: prefix %s holds %d bytes, want %d frames of %dx%d RGB24", errPermanent, key, len(b), task.PrefixFrames, task.Width, task.Height)
	}
	return b, nil
}
