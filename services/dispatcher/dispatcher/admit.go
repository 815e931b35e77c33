package dispatcher

import (
	"context"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

// admitChunk bounds the segments one admission transaction takes. A big
// pool's window (thousands of segments when a long job lands on an idle
// pool) is then admitted in several transactions, each published while the
// next runs, so that the first GPUs get their tasks after one chunk's
// transaction rather than the whole window's.
const admitChunk = 512

// admit fills pool's queue up to PoolWindow segments in flight, taking
// ready segments in fair order (store.AdmitReady), admitChunk at a time. A
// pool's queue therefore never holds more than the window: a 500-segment
// job cannot bury a 5-segment job of another tenant behind it. A tenant at
// its running-segments quota (Quota) has none admitted until some of its
// segments finish (DONE wakes admission). Chain
// segments after the first skip admission: their release is the hand-off
// on the critical path, and a chain has at most one or two segments in
// flight.
func (d *Dispatcher) admit(ctx context.Context, pool string) error {
	for {
		n, err := d.admitOnce(ctx, pool)
		if err != nil || n < admitChunk {
			return err
		}
	}
}

// admitOnce admits up to admitChunk segments of pool in one transaction
// and wakes the outbox publisher for them.
func (d *Dispatcher) admitOnce(ctx context.Context, pool string) (int, error) {
	var chains []store.Segment
	n, err := d.store.AdmitReady(ctx, pool, d.cfg.PoolWindow, admitChunk, d.cfg.Quota.RunningSegments, func(s store.Segment) (store.OutboxMsg, error) {
		if s.Index == 0 {
			chains = append(chains, s)
		}
		return d.taskMsg(ctx, s.Task, 1, "", zeroTime)
	})
	if n > 0 {
		d.wake()
	}
	if err == nil {
		for _, s := range chains { // read ahead for the first hand-off
			d.prefetch(ctx, s.JobID, 1)
		}
	}
	return n, err
}

// wakeAdmit asks the admission loop to run; calls made while it runs
// coalesce into one more run, so a burst of results costs one admission.
func (d *Dispatcher) wakeAdmit() {
	select {
	case d.admitKick <- struct{}{}:
	default:
	}
}

// admitLoop admits when results free capacity, and on a short tick so that
// capacity freed by other replicas or the reconciler is used too.
func (d *Dispatcher) admitLoop(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		for _, p := range d.pools {
			if err := d.admit(ctx, p); err != nil && ctx.Err() == nil {
				d.log.Warn("admit", "pool", p, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.admitKick:
		}
	}
}
