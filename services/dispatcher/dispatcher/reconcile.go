package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
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
//
// A segment last changed before SPOOL_SEGMENTS, or the dispatcher's
// consumer of SPOOL_RESULTS, was created cannot count on its task or its
// results in them: NATS lost its store and they were declared again,
// empty. Such a segment is
// re-published without waiting for its stale bound, once the workers have
// had a registration TTL (the topology's WorkerTTL) since the streams'
// creation to register again, so that those still running their segment
// are seen holding it and left alone. Its lost attempt does not count
// against the segment's attempts (it is recorded RETURNED).
func (d *Dispatcher) Reconcile(ctx context.Context) (int, error) {
	lostBefore, err := streamsLostBefore(ctx, d.bus)
	if err != nil {
		return 0, err
	}
	held, err := d.heldTasks(ctx)
	if err != nil {
		return 0, err
	}
	stale := time.Now().Add(-min(d.cfg.RunningStale, d.cfg.QueuedStale))
	if lostBefore.After(stale) {
		stale = lostBefore
	}
	segs, err := d.store.StaleSegments(ctx, d.pools, stale, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range segs {
		bound := d.cfg.RunningStale
		if s.State == store.SegQueued {
			bound = d.cfg.QueuedStale
		}
		if time.Since(s.UpdatedAt) < bound && !s.UpdatedAt.Before(lostBefore) {
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
		why, class := "lost: no worker held it for "+bound.String(), ""
		if s.UpdatedAt.Before(lostBefore) { // no fault of the segment's: the attempt does not count
			why = "lost with NATS's store (the streams were created again at " + lostBefore.UTC().Format(time.RFC3339) + "), and no worker held it"
			class = spoolv1.ErrorClass_ERROR_CLASS_RETURNED.String()
		}
		retried, err := d.store.RetrySegment(ctx, store.Retry{JobID: s.JobID, Index: s.Index, Attempt: s.Attempts,
			Outcome: store.OutcomeAbandoned, ErrorClass: class, ErrorMsg: why, Outbox: []store.OutboxMsg{msg}})
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

// streamsLostBefore returns when the stream of tasks, SPOOL_SEGMENTS, or
// the dispatcher's consumer of results (on SPOOL_RESULTS, an interest
// stream, which keeps a result only for the consumers it has) was last
// created, whichever is later, once the workers' registration TTL has
// passed since (zero before). A segment last changed before then cannot
// count on its task or its results in them. A missing stream or consumer
// is declared again first.
func streamsLostBefore(ctx context.Context, b *bus.Bus) (time.Time, error) {
	var created time.Time
	for _, c := range []struct{ stream, consumer string }{{bus.StreamSegments, ""}, {bus.StreamResults, bus.ConsumerDispatcher}} {
		t, err := b.Created(ctx, c.stream, c.consumer)
		if err != nil && b.Heal(ctx, err) {
			t, err = b.Created(ctx, c.stream, c.consumer)
		}
		if err != nil {
			return time.Time{}, err
		}
		if t.After(created) {
			created = t
		}
	}
	if time.Since(created) < b.Topology().WorkerTTL {
		return time.Time{}, nil
	}
	return created, nil
}
