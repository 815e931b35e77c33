package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// reconcileLoop re-publishes segments that Postgres says are queued or
// running but that no live worker holds and nothing has touched for too
// long: JetStream can lose messages (a purge, a crash without fsync), and
// Postgres is the truth. Unsent outbox rows are re-driven by publishLoop.
func (d *Dispatcher) reconcileLoop(ctx context.Context) error {
	t := time.NewTicker(d.cfg.ReconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := d.Reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("reconcile", "err", err)
		}
		if n > 0 {
			d.log.Info("reconciler re-published lost segments", "segments", n)
			d.wake()
		}
	}
}

// Reconcile runs one reconciliation pass and says how many segments it
// re-published.
func (d *Dispatcher) Reconcile(ctx context.Context) (int, error) {
	held, err := d.heldTasks(ctx)
	if err != nil {
		return 0, err
	}
	stale := min(d.cfg.RunningStale, d.cfg.QueuedStale)
	segs, err := d.store.StaleSegments(ctx, d.pools, time.Now().Add(-stale), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range segs {
		bound := d.cfg.RunningStale
		if s.State == store.SegQueued {
			bound = d.cfg.QueuedStale
		}
		if time.Since(s.UpdatedAt) < bound {
			continue
		}
		if held[fmt.Sprintf("%s/%d/%d", s.JobID, s.Index, s.Attempts)] {
			if err := d.store.TouchSegment(ctx, s.JobID, s.Index); err != nil {
				return n, err
			}
			continue
		}
		msg, err := d.taskMsg(ctx, s.Task, s.Attempts+1, s.ConditioningKey, zeroTime)
		if err != nil {
			return n, err
		}
		retried, err := d.store.RetrySegment(ctx, store.Retry{JobID: s.JobID, Index: s.Index, Attempt: s.Attempts,
			Outcome: store.OutcomeAbandoned, ErrorMsg: "lost: no worker held it for " + bound.String(), Outbox: []store.OutboxMsg{msg}})
		if err != nil {
			return n, err
		}
		if retried {
			n++
		}
	}
	return n, nil
}

// heldTasks are the "<job>/<segment>/<attempt>" that live workers report in
// the spool_workers bucket.
func (d *Dispatcher) heldTasks(ctx context.Context) (map[string]bool, error) {
	held := map[string]bool{}
	kv, err := d.bus.Workers(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("worker %s: %w", k, err)
		}
		var w spoolv1.WorkerInfo
		if err := proto.Unmarshal(e.Value(), &w); err != nil {
			continue
		}
		for _, t := range w.GetCurrentTasks() {
			held[t] = true
		}
	}
	return held, nil
}
