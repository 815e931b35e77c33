package worker

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/spoolvideo/spool/libs/infer"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// The stall watchdog. Every held task has a progress clock. The engine's
// callbacks move it (a denoise step, the tail, a frame), and so does the
// worker's own work on the segment where it is the worker, not the engine,
// that works: each answer of the store while the conditioning tail is
// awaited, each chunk of the tail downloaded, each chunk of the tail or the
// fragment uploaded (so a long upload that moves is never a stall). A wait
// on another bounded thing pauses the clock instead: a finished segment
// waiting for its slot's pipeline waits for segments watched in their turn.
//
// AckProgress goes out only while the clock has moved within the stall
// timeout: a heartbeat says the segment progresses, not only that the
// process lives. It is not sent per step: a real model's step (20 s for the
// 14B model) may outlast an AckWait of 30 s, and an ack timer that ran out
// would be read as a dead worker (ABANDONED) while the engine still held
// its GPU; the watchdog's verdict is the heartbeat's. Once it has found
// a stall, the heartbeat goes on through the grace the cancelled segment
// has to return, since the watchdog then settles the task itself
// (STALLED) whatever the grace and AckWait are. Should the watchdog itself
// be unable to settle the task (no FAILED can be published, the process
// is frozen), heartbeats have stopped, and AckWait redelivers it.
//
// No progress for the slot's stall timeout, or the task's deadline passed,
// ends the attempt FAILED(STALLED), which the dispatcher retries with
// backoff and counts. The segment's context is cancelled, which sets the
// engine's cancel flag. An engine stuck inside a step may not read it (a
// deadlocked device call, a Python module blocked in time.sleep): when the
// segment has not returned within SPOOL_WORKER_STALL_GRACE of the cancel,
// the watchdog settles the attempt itself, the slot is given up, the
// worker stops fetching, lets its other slots drain as on SIGTERM,
// deregisters, and Run returns ErrEngineWedged: the process exits
// ExitWedged so that its orchestrator restarts it with a fresh GPU context.

// ExitWedged is the exit status of a worker that gave up a wedged engine
// (EX_TEMPFAIL of sysexits.h: restart it).
const ExitWedged = 75

// ErrEngineWedged is returned (wrapped) by Run when an engine did not
// return within the stall grace after its stalled segment was cancelled.
// Its ExitCode is ExitWedged.
var ErrEngineWedged error = &exitError{msg: "worker: an engine did not return after its stalled segment was cancelled", code: ExitWedged}

// exitError is an error that names the process's exit status.
type exitError struct {
	msg  string
	code int
}

func (e *exitError) Error() string { return e.msg }

// ExitCode is the status the process exits with.
func (e *exitError) ExitCode() int { return e.code }

// stallSteps is how many of a model's expected step times (catalog
// StepTime) the watchdog waits for progress, when that is longer than
// SPOOL_WORKER_STALL_TIMEOUT.
const stallSteps = 5

// stallTimeoutFor is the stall timeout of a task of model: the larger of
// cfg.StallTimeout (SPOOL_WORKER_STALL_TIMEOUT) and stallSteps × the
// model's step time in the worker's catalog.
func (w *Worker) stallTimeoutFor(model string) time.Duration {
	m := w.catalog.Models[model]
	return max(w.cfg.StallTimeout, stallSteps*m.StepTime)
}

// clock is a moment of progress, as Unix nanoseconds.
type clock struct{ at atomic.Int64 }

func (c *clock) touch() { c.at.Store(time.Now().UnixNano()) }

// watch is a held task's progress clock and stall bounds.
type watch struct {
	clock
	follow   atomic.Pointer[clock]  // another clock whose progress counts: a tail upload awaited
	holds    atomic.Int32           // waits that pause the clock
	timeout  time.Duration          // no progress for this long is a stall
	deadline time.Time              // the task's deadline, on this worker's clock; zero: none
	why      atomic.Pointer[string] // set once the task stalled
}

// newWatch starts a task's watch now. deadline is the task's; queued is
// how long the task waited in the stream, which does not count against
// it: the deadline bounds the attempt's time in a worker's hands, so that
// a backlog or a pool scaling up from zero does not end attempts unrun.
func newWatch(timeout time.Duration, t *spoolv1.SegmentTask, queued time.Duration) *watch {
	wt := &watch{timeout: timeout}
	if t.GetDeadline() != nil && t.GetDeadline().IsValid() && t.GetDeadline().AsTime().Unix() > 0 {
		wt.deadline = t.GetDeadline().AsTime().Add(max(queued, 0))
	}
	wt.touch()
	return wt
}

// last is the latest progress, the followed clock's included.
func (wt *watch) last() time.Time {
	at := wt.at.Load()
	if f := wt.follow.Load(); f != nil {
		at = max(at, f.at.Load())
	}
	return time.Unix(0, at)
}

// verdict says why the task is stalled at now, or "" when it is not, and
// when to look again.
func (wt *watch) verdict(now time.Time) (why string, next time.Duration) {
	if !wt.deadline.IsZero() && !now.Before(wt.deadline) {
		return fmt.Sprintf("the task's deadline %s passed", wt.deadline.UTC().Format(time.RFC3339)), 0
	}
	next = wt.timeout
	if wt.holds.Load() == 0 {
		quiet := now.Sub(wt.last())
		if quiet >= wt.timeout {
			return fmt.Sprintf("no progress for %v (no denoise step, tail, frame or transfer)", quiet.Round(time.Millisecond)), 0
		}
		next = wt.timeout - quiet
	}
	if !wt.deadline.IsZero() {
		next = min(next, wt.deadline.Sub(now))
	}
	return "", max(next, time.Millisecond)
}

// stalled is why the task stalled, or "".
func (wt *watch) stalled() string {
	if p := wt.why.Load(); p != nil {
		return *p
	}
	return ""
}

// hold pauses the clock until release: the task waits for something that
// is bounded in its own right.
func (wt *watch) hold() (release func()) {
	wt.holds.Add(1)
	return func() {
		wt.touch()
		wt.holds.Add(-1)
	}
}

type watchKey struct{}

// withWatch is ctx carrying wt, for the task's work to report progress.
func withWatch(ctx context.Context, wt *watch) context.Context {
	return context.WithValue(ctx, watchKey{}, wt)
}

func watchOf(ctx context.Context) *watch {
	wt, _ := ctx.Value(watchKey{}).(*watch)
	return wt
}

// touch records progress of ctx's task, if it has a watch.
func touch(ctx context.Context) {
	if wt := watchOf(ctx); wt != nil {
		wt.touch()
	}
}

// following counts c's progress as that of ctx's task until the returned
// func is called: the task waits for c's transfer.
func following(ctx context.Context, c *clock) (stop func()) {
	wt := watchOf(ctx)
	if wt == nil {
		return func() {}
	}
	wt.follow.Store(c)
	return func() {
		wt.touch()
		wt.follow.Store(nil)
	}
}

// progressSink moves the task's clock on every engine callback.
type progressSink struct {
	infer.Sink
	wt *watch
}

func (p progressSink) Step(step, steps int) error {
	p.wt.touch()
	err := p.Sink.Step(step, steps)
	p.wt.touch()
	return err
}

func (p progressSink) Tail(state []byte) error {
	p.wt.touch()
	err := p.Sink.Tail(state)
	p.wt.touch()
	return err
}

func (p progressSink) Frame(f infer.Frame) error {
	p.wt.touch()
	err := p.Sink.Frame(f)
	p.wt.touch()
	return err
}

// progressReader moves c with every read; it keeps the reader's ReadAt and
// Seek (an in-memory upload goes out in parallel parts).
type progressReader struct {
	r interface {
		io.Reader
		io.ReaderAt
		io.Seeker
	}
	c *clock
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.c.touch()
	return n, err
}

func (p progressReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	p.c.touch()
	return n, err
}

func (p progressReader) Seek(off int64, whence int) (int64, error) { return p.r.Seek(off, whence) }

// ctxReader moves ctx's task clock with every read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	touch(c.ctx)
	return n, err
}

// uploadChunk is how much of a fragment is written to the store at once
// between two moves of the task's clock.
const uploadChunk = 1 << 20

// writeAll writes p to w in chunks, moving ctx's task clock after each.
func writeAll(ctx context.Context, w io.Writer, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), uploadChunk)
		if _, err := w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		touch(ctx)
	}
	return nil
}

// giveUp gives slot s up: a segment of it did not return within the grace
// after its cancel. The slot's task fetched ahead goes back unstarted, the
// worker stops fetching, and Run returns err once the other held tasks are
// settled.
func (w *Worker) giveUp(s *slot, err error) {
	s.wedgeOnce.Do(func() {
		w.mu.Lock()
		if w.wedge == nil {
			w.wedge = err
		}
		w.mu.Unlock()
		if s.prefetch != nil {
			if ch := s.prefetch.take(); ch != nil {
				if r := <-ch; r.err == nil {
					w.returnUnstarted(context.Background(), s, r.msg)
				}
			}
		}
		close(s.wedged)
		w.stopRun(err)
	})
}

// wedged returns nil when no engine was given up. Otherwise it waits until
// every task the worker holds is settled (the given-up ones were settled by
// the watchdog) and returns why the engine was given up.
func (w *Worker) wedged() error {
	for ; ; time.Sleep(20 * time.Millisecond) {
		w.mu.Lock()
		err, held := w.wedge, len(w.running)
		w.mu.Unlock()
		if err == nil || held == 0 {
			return err
		}
	}
}
