package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
)

// cancelledJobs mirrors the spool_cancelled bucket in memory through a KV
// watch, so that checking a fetched task's job costs no round trip. Jobs
// leave it as they leave the bucket, after bus.CancelledTTL.
type cancelledJobs struct {
	mu   sync.Mutex
	jobs map[string]time.Time // job → when this worker learnt of it
}

// watch loads the bucket, then follows it until ctx ends. It returns once
// the bucket's current keys are loaded. A watch that ends while ctx lives
// (its consumer is gone: NATS lost its store) is started again, the bucket
// declared again if missing (heal); what was learnt stays.
func (c *cancelledJobs) watch(ctx context.Context, kv jetstream.KeyValue, heal func(context.Context, error) bool) error {
	c.jobs = map[string]time.Time{}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("worker: watch %s: %w", bus.BucketCancelled, err)
	}
	loaded := make(chan struct{})
	go func() {
		once := sync.OnceFunc(func() { close(loaded) })
		defer once()
		for w != nil {
			for e := range w.Updates() {
				if e == nil { // the current keys are all in
					once()
					continue
				}
				c.add(e.Key(), e.Created())
			}
			_ = w.Stop()
			w = nil
			for w == nil && ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
					again, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
					if err != nil {
						heal(ctx, err)
						continue
					}
					w = again
				}
			}
		}
	}()
	select {
	case <-loaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// add records a cancelled job and forgets those past the bucket's TTL.
func (c *cancelledJobs) add(job string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.jobs[job] = at
	if len(c.jobs)%1024 == 0 {
		for j, t := range c.jobs {
			if time.Since(t) > bus.CancelledTTL {
				delete(c.jobs, j)
			}
		}
	}
}

func (c *cancelledJobs) has(job string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.jobs[job]
	return ok
}
