package dispatcher

import (
	"context"
	"time"

	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// admit fills pool's queue up to PoolWindow segments in flight, taking
// ready segments in fair order (store.AdmitReady). A pool's queue therefore
// never holds more than the window: a 500-segment job cannot bury a
// 5-segment job of another tenant behind it. Chain segments after the first
// skip admission: their release is the hand-off on the critical path, and a
// chain has at most one or two segments in flight.
func (d *Dispatcher) admit(ctx context.Context, pool string) error {
	n, err := d.store.AdmitReady(ctx, pool, d.cfg.PoolWindow, func(s store.Segment) (store.OutboxMsg, error) {
		return d.taskMsg(ctx, s.Task, 1, "", zeroTime)
	})
	if n > 0 {
		d.wake()
	}
	return err
}

// admitLoop admits on a short tick, besides the admissions that follow
// every result, so that capacity freed anywhere is used.
func (d *Dispatcher) admitLoop(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		for _, p := range d.cfg.Pools {
			if err := d.admit(ctx, p); err != nil && ctx.Err() == nil {
				d.log.Warn("admit", "pool", p, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// admitFor admits after a result freed capacity: in the result's pool, or
// in every pool when the worker did not say.
func (d *Dispatcher) admitFor(ctx context.Context, r *spoolv1.SegmentResult) error {
	if r.GetPool() != "" {
		return d.admit(ctx, r.GetPool())
	}
	for _, p := range d.cfg.Pools {
		if err := d.admit(ctx, p); err != nil {
			return err
		}
	}
	return nil
}
