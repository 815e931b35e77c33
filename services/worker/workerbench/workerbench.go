// Package workerbench measures the worker for `make bench`, on the real
// NATS, Postgres and MinIO of a devstack with an in-process dispatcher:
//
//   - busy: the share of a slot's wall time spent inside the engine with a
//     full queue of 200 ms sim segments (real ffmpeg encoder, real uploads);
//   - overhead: per 720p ref chain segment, the worker's own time before the
//     engine starts (fetch, cancel check, tail download, encoder start) and
//     after it returns (last frames encoded, retime, upload, DONE), against
//     the engine's time;
//   - scaling: makespan ÷ (Σ engine time ÷ N) for N sim slots spread over
//     spool-worker processes (200 ms segments, the discard encoder).
//
// The sim backend and the discard encoder exist for such control-plane
// figures only, and the tables say so.
package workerbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// Options size the runs; Short is CI's smoke form.
type Options struct {
	Short bool
	// BinDir holds built spool-worker and spool-dispatcher binaries for
	// the scaling run (bin/ after `make build`); empty builds them.
	BinDir string
	// Slots, when not empty, keeps the scaling runs of these slot counts.
	Slots []int
	Log   io.Writer
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// rig is a devstack with a dispatcher serving one pool.
type rig struct {
	stack *devstack.Stack
	bus   *bus.Bus
	blob  *blob.Store
	store *store.Store
	pool  string
	stops []func()
}

// setup starts a devstack and an in-process dispatcher admitting window
// segments of pool at once.
func setup(ctx context.Context, pool string, window int) (r *rig, err error) {
	if r, err = setupStack(ctx, pool); err != nil {
		return nil, err
	}
	cfg := dispatcher.Config{Pools: pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: time.Second, ReconcileEvery: time.Hour,
		RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: window, LiveAhead: 2, OutboxBatch: 256, SubmitBatch: 64,
		SegmentDeadline: time.Hour}
	d, err := dispatcher.New(ctx, cfg, r.bus, r.store, quiet())
	if err != nil {
		r.close()
		return nil, err
	}
	r.start(ctx, d.Run)
	return r, nil
}

// setupStack starts a devstack and the rig's clients of it, without a
// dispatcher.
func setupStack(ctx context.Context, pool string) (r *rig, err error) {
	st, err := devstack.Start(ctx, devstack.Options{NATS: true, Postgres: true, MinIO: true})
	if err != nil {
		return nil, err
	}
	r = &rig{stack: st, pool: pool}
	r.stops = append(r.stops, func() { _ = st.Stop() })
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.bus, err = bus.Connect(ctx, st.NATSConfig()); err != nil {
		return nil, err
	}
	r.stops = append(r.stops, func() { _ = r.bus.Close() })
	if r.store, err = store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 16}); err != nil {
		return nil, err
	}
	r.stops = append(r.stops, r.store.Close)
	if r.blob, err = blob.New(r.s3()); err != nil {
		return nil, err
	}
	if err = r.blob.EnsureBucket(ctx); err != nil {
		return nil, err
	}
	if err = r.bus.Declare(ctx); err != nil { // streams and buckets, before any service runs
		return nil, err
	}
	return r, nil
}

func (r *rig) s3() config.S3 {
	st := r.stack
	return st.S3Config()
}

// start runs fn until the rig closes.
func (r *rig) start(ctx context.Context, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = fn(ctx); close(done) }()
	r.stops = append(r.stops, func() { cancel(); <-done })
}

func (r *rig) close() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
}

// worker starts an in-process worker on the rig's pool.
func (r *rig) worker(ctx context.Context, cfg worker.Config) (*worker.Worker, error) {
	cfg.Pool, cfg.Heartbeat = r.pool, 5*time.Second
	w, err := worker.New(cfg, r.bus, r.blob, nil, quiet())
	if err != nil {
		return nil, err
	}
	r.stops = append(r.stops, w.Close)
	r.start(ctx, w.Run)
	return w, nil
}

func (r *rig) submit(ctx context.Context, spec string) error {
	m := nats.NewMsg(bus.SubjectJobSubmit)
	m.Data = []byte(spec)
	m.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	if _, err := r.bus.JetStream().PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	return nil
}

// waitDone waits until n segments are done in Postgres, failing on a
// failed segment, a job of jobs that ended badly, or after limit.
func (r *rig) waitDone(ctx context.Context, n int, limit time.Duration, jobs ...string) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := r.store.CountSegments(ctx, store.SegDone)
		if err != nil {
			return err
		}
		if done >= n {
			return nil
		}
		if failed, _ := r.store.CountSegments(ctx, store.SegFailed); failed > 0 {
			return fmt.Errorf("%d segments failed", failed)
		}
		for _, id := range jobs {
			if j, err := r.store.GetJob(ctx, id); err == nil && j.State.Terminal() && j.State != store.JobSucceeded {
				return fmt.Errorf("job %s %s: %s", id, j.State, j.ErrorMessage)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d segments done after %v", done, n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
