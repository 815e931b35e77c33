package worker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
)

// prefetch hides the fetch round trip of short segments. When a run
// reaches its last denoising step and the slot expects the engine to be
// done within cfg.Prefetch (one step plus the last segment's decode, as
// measured), the slot asks for its next task in the background. An idle
// slot's pending fetch is ahead in the server's queue, so a prefetch never
// takes a task from a slot that could start it sooner; the task waits at
// most about cfg.Prefetch. Long segments (a real model's steps take
// seconds) never prefetch.
type prefetch struct {
	consumer jetstream.Consumer
	window   time.Duration

	lastStep   time.Time     // when the previous step ended
	stepTook   time.Duration // the previous step's duration
	decodeTook time.Duration // the previous run's time after its last step

	pending atomic.Pointer[chan fetched] // the background fetch, or nil; taken once (take)
}

type fetched struct {
	msg jetstream.Msg
	err error
}

// step is called after each denoising step of the running segment.
func (p *prefetch) step(ctx context.Context, step, total int) {
	now := time.Now()
	if !p.lastStep.IsZero() {
		p.stepTook = now.Sub(p.lastStep)
	}
	p.lastStep = now
	if !p.due(step, total) {
		return
	}
	ch := make(chan fetched, 1)
	p.pending.Store(&ch)
	go func() {
		// Not cancelled when the worker stops: a task already on its way
		// would be Nak'ed and come back delivered twice (taken for one whose
		// worker died); the slot waits for this fetch (a second or two)
		// and gives what it brought back as RETURNED.
		m, err := bus.FetchOne(context.WithoutCancel(ctx), p.consumer, time.Second)
		ch <- fetched{m, err}
	}()
}

// due says whether to fetch ahead after this step: one step is left, and
// it and the decode after it are expected within the window.
func (p *prefetch) due(step, total int) bool {
	return p.window > 0 && p.pending.Load() == nil && step == total-1 && p.stepTook > 0 && p.stepTook+p.decodeTook <= p.window
}

// ran is called when the run returns: it records how long the run took
// after its last step.
func (p *prefetch) ran() {
	if !p.lastStep.IsZero() {
		p.decodeTook = time.Since(p.lastStep)
	}
	p.lastStep, p.stepTook = time.Time{}, 0
}

// take returns the pending background fetch, once, or nil. The slot's loop
// takes it, and so does the watchdog when it gives up a slot whose loop is
// stuck in its engine.
func (p *prefetch) take() chan fetched {
	if ch := p.pending.Swap(nil); ch != nil {
		return *ch
	}
	return nil
}

// next returns the background fetch's result if one is pending, or fetches.
// Like the fetch ahead, the fetch is not cancelled when the worker stops
// (it waits at most a second): a task already on its way would be Nak'ed
// and come back delivered twice, counted as abandoned. The caller gives a
// task it gets after the stop back as RETURNED.
func (p *prefetch) next(ctx context.Context) (jetstream.Msg, error) {
	if ch := p.take(); ch != nil {
		r := <-ch
		return r.msg, r.err
	}
	return bus.FetchOne(context.WithoutCancel(ctx), p.consumer, time.Second)
}
