package gateway

import (
	"errors"
	"time"
)

// Option configures New.
type Option func(*options) error

type options struct {
	now func() time.Time
}

// WithClock makes the gateway read the time from now instead of time.Now:
// the UTC day a submission counts in, the Retry-After of a daily quota and
// the refill of the rate limiter's buckets follow it.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("gateway: WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}
