package worker

import (
	"context"
	"errors"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
)

// retryStore runs op, an object-store request, until it succeeds or for
// about budget after it began: a store that restarts (a crash, a rolling
// update) comes back within seconds, and a segment should not fail, nor a
// tail be voided, for that. The first try runs unbounded (a large upload on
// a healthy store takes what it takes); a try after a failure runs only
// until the budget ends. Each try is itself retried by the S3 client with
// its own short backoff (minio-go: up to 10 requests, at most 1 s apart),
// so the store is tried again within about a second of its return. An
// answer that the object or bucket is missing (blob.ErrNotFound) is
// returned at once: retrying cannot change it. It returns op's last error,
// or ctx's when ctx ends.
func retryStore(ctx context.Context, budget time.Duration, op func(context.Context) error) error {
	deadline := time.Now().Add(budget)
	try := ctx
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
		err := op(try)
		if err == nil || errors.Is(err, blob.ErrNotFound) || ctx.Err() != nil {
			return err
		}
		if time.Until(deadline) < pause {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		if try == ctx {
			var cancel context.CancelFunc
			try, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
	}
}
