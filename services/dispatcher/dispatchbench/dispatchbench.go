// Package dispatchbench measures the dispatcher for `make bench`, on the
// real NATS and Postgres of a devstack:
//
//   - handoff: a chain segment's TAIL_READY published → the next segment's
//     task in the hands of a worker already waiting in Fetch (p50, p99);
//   - dispatch: segments per second through admission, publish and commit,
//     with a harness that answers every task with DONE at once.
//
// Each runs twice, on the test settings (Postgres without fsync, JetStream
// syncing every two minutes) and on a durable stack (Postgres's durable
// defaults, JetStream syncing every write, as deployments run them), and
// says which figure is which.
package dispatchbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

// Handoff is the "handoff" object of bench/results.json: the figures on
// the test settings, and Durable's on a durable stack.
type Handoff struct {
	P50MS   float64  `json:"p50_ms"`
	P99MS   float64  `json:"p99_ms"`
	Samples int      `json:"samples"`
	Stack   string   `json:"stack"`
	Durable *Handoff `json:"durable,omitempty"`
}

// Dispatch is the "dispatch" object of bench/results.json, shaped as
// Handoff.
type Dispatch struct {
	SegmentsPerS float64   `json:"segments_per_s"`
	Segments     int       `json:"segments"`
	Stack        string    `json:"stack"`
	Durable      *Dispatch `json:"durable,omitempty"`
}

// Options size the runs; Short is CI's smoke form.
type Options struct {
	Short bool
	Log   io.Writer
}

type rig struct {
	stack *devstack.Stack
	bus   *bus.Bus
	store *store.Store
	stop  func()
}

func setup(ctx context.Context, pool string, window int, durable bool) (*rig, error) {
	st, err := devstack.Start(ctx, devstack.Options{NATS: true, Postgres: true, Durable: durable})
	if err != nil {
		return nil, err
	}
	r := &rig{stack: st}
	if r.bus, err = bus.Connect(ctx, st.NATSConfig()); err != nil {
		_ = st.Stop()
		return nil, err
	}
	if r.store, err = store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 16}); err != nil {
		_ = r.bus.Close()
		_ = st.Stop()
		return nil, err
	}
	cfg := dispatcher.Config{Pools: pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: time.Second, ReconcileEvery: time.Hour,
		RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: window, LiveAhead: 2, OutboxBatch: 256, SubmitBatch: 64,
		SegmentDeadline: time.Hour}
	d, err := dispatcher.New(ctx, cfg, r.bus, r.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		r.close()
		return nil, err
	}
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = d.Run(dctx); close(done) }()
	r.stop = func() { cancel(); <-done }
	return r, nil
}

func (r *rig) close() {
	if r.stop != nil {
		r.stop()
	}
	r.store.Close()
	_ = r.bus.Close()
	_ = r.stack.Stop()
}

func submit(ctx context.Context, b *bus.Bus, spec string) error {
	m := nats.NewMsg(bus.SubjectJobSubmit)
	m.Data = []byte(spec)
	m.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	_, err := b.JetStream().PublishMsg(ctx, m)
	return err
}

func result(t *spoolv1.SegmentTask, phase spoolv1.Phase) *spoolv1.SegmentResult {
	r := &spoolv1.SegmentResult{JobId: t.JobId, Index: t.Index, Attempt: t.Attempt, Phase: phase, Pool: t.Pool, WorkerId: "bench"}
	if t.TailFrames > 0 {
		k, _ := blob.SegmentTail(t.JobId, t.Index, t.Attempt)
		r.TailKey = string(k)
	}
	if phase == spoolv1.Phase_PHASE_DONE {
		k, _ := blob.SegmentVideo(t.JobId, t.Index, t.Attempt, "m4s")
		r.VideoKey, r.Sha256, r.Bytes, r.Frames = string(k), "0000000000000000000000000000000000000000000000000000000000000000", 1, t.Frames
	}
	return r
}

// RunHandoff times chain hand-offs on the test settings, then on a durable
// stack.
func RunHandoff(ctx context.Context, o Options) (Handoff, error) {
	h, d, err := bench.OnBothStacks(ctx, func(ctx context.Context, durable bool) (Handoff, error) { return runHandoff(ctx, o, durable) })
	h.Durable = &d
	return h, err
}

func runHandoff(ctx context.Context, o Options, durable bool) (Handoff, error) {
	segments := 300
	if o.Short {
		segments = 40
	}
	r, err := setup(ctx, "handoff", 64, durable)
	if err != nil {
		return Handoff{}, err
	}
	defer r.close()
	c, err := r.bus.DeclarePool(ctx, "handoff")
	if err != nil {
		return Handoff{}, err
	}
	spec := fmt.Sprintf(`{"id":"handoff","prompt":"x","durationFrames":%d,"windowFrames":9,"overlapFrames":4,"width":64,"height":64,"steps":1,"pool":"handoff"}`,
		9+5*(segments-1))
	if err := submit(ctx, r.bus, spec); err != nil {
		return Handoff{}, err
	}
	var lat []float64
	var tailAt time.Time
	for i := 0; i < segments; i++ {
		m, err := bus.FetchOne(ctx, c, 10*time.Second)
		if err != nil {
			return Handoff{}, fmt.Errorf("segment %d never arrived: %w", i, err)
		}
		got := time.Now()
		if i > 0 {
			lat = append(lat, float64(got.Sub(tailAt).Microseconds())/1000)
		}
		t, err := bus.DecodeTask(m.Data())
		if err != nil {
			return Handoff{}, err
		}
		// The segment's denoising: the dispatcher has finished with the
		// previous segment's DONE when this TAIL_READY arrives, as it has
		// with real segments that take seconds.
		time.Sleep(20 * time.Millisecond)
		tailAt = time.Now()
		if _, err := r.bus.PublishResult(ctx, result(t, spoolv1.Phase_PHASE_TAIL_READY)); err != nil {
			return Handoff{}, err
		}
		if _, err := r.bus.PublishResult(ctx, result(t, spoolv1.Phase_PHASE_DONE)); err != nil {
			return Handoff{}, err
		}
		_ = m.Ack()
	}
	sort.Float64s(lat)
	return Handoff{P50MS: lat[len(lat)/2], P99MS: lat[len(lat)*99/100], Samples: len(lat), Stack: bench.StackName(durable)}, nil
}

// RunDispatch measures segments/s through dispatch and commit on the test
// settings, then on a durable stack.
func RunDispatch(ctx context.Context, o Options) (Dispatch, error) {
	d, dd, err := bench.OnBothStacks(ctx, func(ctx context.Context, durable bool) (Dispatch, error) { return runDispatch(ctx, o, durable) })
	d.Durable = &dd
	return d, err
}

func runDispatch(ctx context.Context, o Options, durable bool) (Dispatch, error) {
	jobs, per := 40, 100
	if o.Short {
		jobs, per = 4, 25
	}
	r, err := setup(ctx, "dispatch", jobs*per, durable)
	if err != nil {
		return Dispatch{}, err
	}
	defer r.close()
	c, err := r.bus.DeclarePool(ctx, "dispatch")
	if err != nil {
		return Dispatch{}, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go instantWorker(wctx, r.bus, c)
	start := time.Now()
	for j := 0; j < jobs; j++ {
		spec := fmt.Sprintf(`{"id":"d%d","prompt":"x","mode":"MODE_INDEPENDENT","durationFrames":%d,"windowFrames":9,"overlapFrames":4,"width":64,"height":64,"steps":1,"pool":"dispatch"}`,
			j, 9+5*(per-1))
		if err := submit(ctx, r.bus, spec); err != nil {
			return Dispatch{}, err
		}
	}
	total := jobs * per
	for {
		done, err := r.store.CountSegments(ctx, store.SegDone)
		if err != nil {
			return Dispatch{}, err
		}
		if done >= total {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return Dispatch{}, fmt.Errorf("only %d of %d segments done after 5 minutes", done, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return Dispatch{SegmentsPerS: float64(total) / time.Since(start).Seconds(), Segments: total, Stack: bench.StackName(durable)}, nil
}

// instantWorker answers every task with DONE at once, publishing
// asynchronously so that the worker side is not the bottleneck.
func instantWorker(ctx context.Context, b *bus.Bus, c jetstream.Consumer) {
	for ctx.Err() == nil {
		batch, err := c.Fetch(256, jetstream.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			continue
		}
		for m := range batch.Messages() {
			t, err := bus.DecodeTask(m.Data())
			if err != nil {
				continue
			}
			msg, err := bus.NewMsg(ctx, "", result(t, spoolv1.Phase_PHASE_DONE))
			if err != nil {
				continue
			}
			msg.Subject, _ = bus.ResultsSubject(t.JobId)
			_, _ = b.JetStream().PublishMsgAsync(msg, jetstream.WithMsgID(bus.ResultMsgID(t.JobId, t.Index, t.Attempt, "done")))
			_ = m.Ack()
		}
	}
}
