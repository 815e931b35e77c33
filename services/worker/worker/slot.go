package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
)

// slotLoop keeps the slot's engine busy. It fetches exactly one task at a
// time and runs the engine on it; the segment's finish (the encoder's last
// frames, retiming, upload, DONE, ack) then goes on behind the engine while
// the slot fetches the next task, so that the next segment's start never
// waits for this one's encode or upload. At most cfg.Pipeline segments
// finish behind the engine at once; when they fall behind, the slot waits.
//
// A GPU slot whose free memory is below the model's need does not fetch:
// another process may hold the GPU, and a task taken now would only fail.
func (w *Worker) slotLoop(ctx context.Context, s *slot, c jetstream.Consumer) {
	finishing := make(chan struct{}, w.cfg.Pipeline)
	defer s.dropWarm()
	s.prefetch = &prefetch{consumer: c, window: w.cfg.Prefetch}
	defer func() { // a task fetched ahead but never started goes back at once
		if ch := s.prefetch.take(); ch != nil {
			if r := <-ch; r.err == nil {
				w.returnUnstarted(ctx, s, r.msg)
			}
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		if !w.roomFor(s) {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		asked := time.Now()
		m, err := s.prefetch.next(ctx)
		if err != nil {
			if !errors.Is(err, bus.ErrNoMessage) && ctx.Err() == nil {
				wait := 50 * time.Millisecond
				if !w.bus.Heal(ctx, err) { // healed: the pool's consumer was missing (NATS lost its store)
					w.log.Warn("fetch", "slot", s.id, "err", err)
					wait = 200 * time.Millisecond
				}
				time.Sleep(wait)
			}
			continue
		}
		if ctx.Err() != nil { // stopped while the task was on its way
			w.returnUnstarted(ctx, s, m)
			return
		}
		fetched := time.Now()
		s.fetch.Add(int64(fetched.Sub(asked)))
		d := w.accept(ctx, s, m)
		if d == nil {
			continue
		}
		out, err := w.generate(d)
		if err != nil {
			d.settle(ctx, err)
			continue
		}
		s.prepare.Add(int64(out.sink.start.Sub(fetched)))
		// Waiting for the pipeline is no stall of this segment: the ones
		// ahead of it are watched in their turn. A deadline or a cancel
		// still ends the wait.
		release := d.watch.hold()
		select {
		case finishing <- struct{}{}:
			release()
		case <-d.ctx.Done():
			release()
			_ = out.enc.Close()
			d.settle(ctx, d.ctx.Err())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-finishing }()
			err := w.finish(d, out)
			if err == nil {
				s.finish.Add(int64(time.Since(out.decoded)))
				s.segments.Add(1)
			}
			d.settle(ctx, err)
		}()
	}
}
