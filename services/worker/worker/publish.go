package worker

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// resultRetry bounds how long a result's publish is retried: a NATS
// restart (clients reconnect within about a second of its return) must not
// fail a segment, nor leave its task to be redelivered after AckWait as
// abandoned. A result's Nats-Msg-Id makes a retried publish a no-op.
const resultRetry = 30 * time.Second

// publishResult publishes r on its job's results subject, retrying a
// failed publish for up to resultRetry, unless ctx ends or the connection
// is closed for good (the worker is stopping).
func (w *Worker) publishResult(ctx context.Context, r *spoolv1.SegmentResult) error {
	deadline := time.Now().Add(resultRetry)
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		_, err := w.bus.PublishResult(ctx, r)
		if err == nil || ctx.Err() != nil || errors.Is(err, nats.ErrConnectionClosed) || time.Now().Add(pause).After(deadline) {
			return err
		}
		w.log.Warn("publish result; retrying", "job", r.GetJobId(), "segment", r.GetIndex(), "attempt", r.GetAttempt(),
			"phase", r.GetPhase().String(), "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}
