// Package e2ebench measures the whole system for `make bench` (DESIGN §14)
// on a devstack, with every service in this process:
//
//   - overhead: the demo spec's distributed wall time (submit to succeeded,
//     two ref worker slots, the stitcher) over `render --local` of it;
//   - critical-path: a chain job's wall time over the sum of its denoise
//     times (sim backend, labelled; real ffmpeg and stitcher), i.e. what
//     the hand-offs and the last segment's finish add to the chain: 12
//     segments of the ref model's 2.1 s in small windows, 30 of 200 ms (a
//     stress reading), and 8 of 2.1 s in 720p windows, whose 34 MB tails
//     go through the object store at every hand-off;
//   - throughput: segments per second from dispatch through a worker to
//     DONE committed in Postgres (sim at 0 ms and the discard encoder, both
//     labelled; no stitcher: there is no video), on the test settings and
//     on a durable stack (Postgres's durable defaults, JetStream syncing
//     every write), each figure labelled with its stack.
//
// Overhead and critical-path run on the test settings.
package e2ebench

import (
	"context"
	"fmt"
	"github.com/spoolvideo/spool/libs/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"io"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/spoolctl/render"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// Options size the runs; Short is CI's smoke form.
type Options struct {
	Short bool
	Log   io.Writer
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Overhead is the "overhead" object of bench/results.json.
type Overhead struct {
	Ratio         float64 `json:"ratio"`
	DistributedMS float64 `json:"distributed_ms"`
	LocalMS       float64 `json:"local_ms"`
	Frames        int64   `json:"frames"`
}

// CriticalPath is the "critical_path" object.
type CriticalPath struct {
	Ratio     float64 `json:"ratio"`
	WallMS    float64 `json:"wall_ms"`
	DenoiseMS float64 `json:"denoise_ms"`
	Segments  int     `json:"segments"`
	SegmentMS float64 `json:"segment_denoise_ms"` // the sim's denoising per segment
	// Stress is the same chain with 200 ms segments: ten times shorter than
	// the ref model's, so that the fixed cost of each hand-off shows.
	Stress *CriticalPath `json:"stress,omitempty"`
	// HD is the ref-length chain with 720p windows (121 frames, 37 of
	// overlap): each hand-off then moves the ref format's 34 MB tail state
	// through the object store, which the main figure's small windows leave
	// out.
	HD *CriticalPath `json:"hd,omitempty"`
	// TailBytes is the size of each tail state handed off.
	TailBytes int64 `json:"tail_bytes"`
	// Retries are the attempts redone (their work is in the wall time, not
	// in Σ denoise), with why, so that an outlier explains itself.
	Retries []string `json:"retries,omitempty"`
	// HandoffMS is the median time from a segment's denoising end to the
	// next task in the stream (the tail's hand-off, TAIL_READY, the
	// release), when measured (-v).
	HandoffMS float64 `json:"handoff_ms,omitempty"`
}

// chainShape is the window geometry of a critical-path chain.
type chainShape struct {
	width, height, window, overlap int
}

var (
	smallChain = chainShape{64, 64, 25, 5}
	hdChain    = chainShape{1280, 720, 121, 37}
)

// Throughput is the "throughput" object: the figures on the test
// settings, and Durable's on a durable stack.
type Throughput struct {
	SegmentsPerS float64 `json:"segments_per_s"`
	Segments     int     `json:"segments"`
	Slots        int     `json:"slots"`
	Window       int     `json:"window"`
	// CPU is where the machine's CPUs went while it was measured.
	CPU CPUShare `json:"cpu"`
	// Stack is "test settings" or "durable".
	Stack   string      `json:"stack"`
	Durable *Throughput `json:"durable,omitempty"`
}

// rig is a devstack with its clients.
type rig struct {
	st    *devstack.Stack
	bus   *bus.Bus
	store *store.Store
	blob  *blob.Store
	stops []func()
}

// setup starts a devstack on the test settings.
func setup(ctx context.Context) (*rig, error) { return setupStack(ctx, false) }

// setupStack starts a devstack, durable or on the test settings, and the
// rig's clients.
func setupStack(ctx context.Context, durable bool) (*rig, error) {
	st, err := devstack.Start(ctx, devstack.Options{NATS: true, Postgres: true, MinIO: true, Durable: durable})
	if err != nil {
		return nil, err
	}
	r := &rig{st: st}
	r.stops = append(r.stops, func() { _ = st.Stop() })
	if r.bus, err = bus.Connect(ctx, st.NATSConfig()); err != nil {
		r.close()
		return nil, err
	}
	r.stops = append(r.stops, func() { _ = r.bus.Close() })
	if r.store, err = store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 16}); err != nil {
		r.close()
		return nil, err
	}
	r.stops = append(r.stops, r.store.Close)
	if r.blob, err = blob.New(st.S3Config()); err == nil {
		err = r.blob.EnsureBucket(ctx)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *rig) close() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
}

func (r *rig) start(ctx context.Context, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = fn(ctx); close(done) }()
	r.stops = append(r.stops, func() { cancel(); <-done })
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// services starts the dispatcher for pool, the stitcher when stitch is set,
// and a worker.
func (r *rig) services(ctx context.Context, pool string, window int, stitch bool, wcfg worker.Config) error {
	d, err := dispatcher.New(ctx, dispatcher.Config{Pools: pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: time.Second,
		ReconcileEvery: time.Hour, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: window, LiveAhead: 2, OutboxBatch: 256,
		SubmitBatch: 64, SegmentDeadline: time.Hour}, r.bus, r.store, quiet())
	if err != nil {
		return err
	}
	r.start(ctx, d.Run)
	if stitch {
		s, err := stitcher.New(stitcher.Config{ID: "bench", PartSize: 8 << 20, OpenJobs: 4, Parallel: 4, Lease: 30 * time.Second,
			LiveWindow: 10, Codec: "h264", Sweep: 10 * time.Second}, r.bus, r.store, r.blob, quiet())
		if err != nil {
			return err
		}
		r.start(ctx, s.Run)
	}
	wcfg.Pool, wcfg.Heartbeat = pool, 10*time.Second
	w, err := worker.New(wcfg, r.bus, r.blob, nil, quiet())
	if err != nil {
		return err
	}
	r.stops = append(r.stops, w.Close)
	r.start(ctx, w.Run)
	return nil
}

func (r *rig) submit(ctx context.Context, spec string) error {
	m := nats.NewMsg(bus.SubjectJobSubmit)
	m.Data = []byte(spec)
	m.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	_, err := r.bus.JetStream().PublishMsg(ctx, m)
	return err
}

// waitJob waits for the job to succeed.
func (r *rig) waitJob(ctx context.Context, id string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		j, err := r.store.GetJob(ctx, id)
		if err == nil && j.State == store.JobSucceeded {
			return nil
		}
		if err == nil && j.State.Terminal() {
			return fmt.Errorf("job %s %s: %s", id, j.State, j.ErrorMessage)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return fmt.Errorf("job %s not done in %v", id, limit)
}

// DemoSpec is `make demo`'s job, for the overhead figure; short is a
// 10-second cut of it, whose cues are moved onto the segment boundaries of
// its first 10 s (5.04 s and 8.54 s), where a prompt can change.
func DemoSpec(id string, short bool) string {
	seconds, cues := 60, [2]float64{20, 40}
	if short {
		seconds, cues = 10, [2]float64{5, 8.5}
	}
	return fmt.Sprintf(`{"id":"%s","timeline":[{"fromS":0,"prompt":"a lighthouse on a cliff at dusk, waves below"},`+
		`{"fromS":%g,"prompt":"the lighthouse beam sweeping over a stormy sea at night"},`+
		`{"fromS":%g,"prompt":"dawn over a calm sea, the lighthouse in soft light"}],`+
		`"durationS":%d,"resolution":"RESOLUTION_720P","fps":24,"mode":"MODE_CHAIN","seed":2026}`, id, cues[0], cues[1], seconds)
}

// RunOverhead times the demo spec distributed (two ref slots) and rendered
// locally, in one run.
func RunOverhead(ctx context.Context, o Options) (Overhead, error) {
	r, err := setup(ctx)
	if err != nil {
		return Overhead{}, err
	}
	defer r.close()
	if err := r.services(ctx, "default", 32, true, worker.Config{ID: "bench", Backend: "ref", Slots: 2}); err != nil {
		return Overhead{}, err
	}
	spec := DemoSpec("overhead", o.Short)
	start := time.Now()
	if err := r.submit(ctx, spec); err != nil {
		return Overhead{}, err
	}
	if err := r.waitJob(ctx, "overhead", 30*time.Minute); err != nil {
		return Overhead{}, err
	}
	dist := time.Since(start)
	j, err := r.store.GetJob(ctx, "overhead")
	if err != nil {
		return Overhead{}, err
	}
	o.logf("overhead: distributed %v", dist)
	js, err := bus.DecodeJobSpec([]byte(spec), nats.Header{bus.HeaderContentType: []string{bus.ContentJSON}})
	if err != nil {
		return Overhead{}, err
	}
	start = time.Now()
	res, err := render.Render(ctx, js, io.Discard, render.Options{})
	if err != nil {
		return Overhead{}, err
	}
	local := time.Since(start)
	o.logf("overhead: local %v", local)
	if res.Frames != j.FinalFrames {
		return Overhead{}, fmt.Errorf("overhead: %d frames distributed, %d local", j.FinalFrames, res.Frames)
	}
	return Overhead{Ratio: float64(dist) / float64(local), DistributedMS: ms(dist), LocalMS: ms(local), Frames: res.Frames}, nil
}

// RefSegmentMS is the ref model's denoising of one 720p chain segment on
// the 2-core machine (121 frames, 30 steps: 2,151 ms in the worker-overhead
// benchmark); the critical-path chain gives its sim segments that length.
const RefSegmentMS = 2100

// RunCriticalPath runs a sim chain job whose segments denoise as long as the
// ref model's 720p ones and divides its wall time by the sum of its
// segments' denoise times; then the stress reading, 200 ms segments.
func RunCriticalPath(ctx context.Context, o Options) (CriticalPath, error) {
	segments, stress, hd := 12, 30, 8
	if o.Short {
		segments, stress, hd = 3, 6, 2
	}
	cp, err := criticalPath(ctx, o, segments, RefSegmentMS, smallChain)
	if err != nil {
		return CriticalPath{}, err
	}
	st, err := criticalPath(ctx, o, stress, 200, smallChain)
	if err != nil {
		return CriticalPath{}, err
	}
	cp.Stress = &st
	h, err := criticalPath(ctx, o, hd, RefSegmentMS, hdChain)
	if err != nil {
		return CriticalPath{}, err
	}
	cp.HD = &h
	return cp, nil
}

// criticalPath runs one sim chain of segments whose denoising takes
// segmentMS (10 steps), in windows of shape.
func criticalPath(ctx context.Context, o Options, segments, segmentMS int, shape chainShape) (CriticalPath, error) {
	id := fmt.Sprintf("critical-%d-%d", segmentMS, shape.height)
	rec := o.spans()
	r, err := setup(ctx)
	if err != nil {
		return CriticalPath{}, err
	}
	defer r.close()
	if err := r.services(ctx, "chain", 8, true, worker.Config{ID: "bench", Backend: "sim", Params: fmt.Sprintf("step_ms=%d", segmentMS/10), Slots: 2}); err != nil {
		return CriticalPath{}, err
	}
	spec := fmt.Sprintf(`{"id":"%s","prompt":"a long road","model":"sim","durationFrames":%d,"windowFrames":%d,"overlapFrames":%d,`+
		`"width":%d,"height":%d,"steps":10,"fps":24,"pool":"chain"}`, id, shape.window+(segments-1)*(shape.window-shape.overlap),
		shape.window, shape.overlap, shape.width, shape.height)
	start := time.Now()
	if err := r.submit(ctx, spec); err != nil {
		return CriticalPath{}, err
	}
	if err := r.waitJob(ctx, id, 10*time.Minute); err != nil {
		return CriticalPath{}, err
	}
	wall := time.Since(start)
	var denoise time.Duration
	var retries []string
	for i := range segments {
		a, err := r.store.ListAttempts(ctx, id, i)
		if err != nil || len(a) == 0 {
			return CriticalPath{}, fmt.Errorf("critical path: attempts of segment %d: %v", i, err)
		}
		denoise += time.Duration(a[len(a)-1].Timings.DenoiseMS) * time.Millisecond
		for _, at := range a[:len(a)-1] { // a retry's work is not in Σ denoise: say why it happened
			retries = append(retries, fmt.Sprintf("segment %d attempt %d %s (%s): %s", i, at.Attempt, at.Outcome, at.ErrorClass, at.ErrorMsg))
		}
	}
	if o.Log != nil {
		first, _ := r.store.ListAttempts(ctx, id, 0)
		last, _ := r.store.ListAttempts(ctx, id, segments-1)
		j, _ := r.store.GetJob(ctx, id)
		if len(first) > 0 && len(last) > 0 && last[0].FinishedAt != nil && j.FinishedAt != nil {
			o.logf("critical path: first task queued %v after submit; last DONE committed %v before the end; job finished %v after",
				first[0].QueuedAt.Sub(start), start.Add(wall).Sub(*last[0].FinishedAt), j.FinishedAt.Sub(*last[0].FinishedAt))
			o.logf("critical path: last segment timings %+v", last[0].Timings)
		}
	}
	cp := CriticalPath{Ratio: float64(wall) / float64(denoise), WallMS: ms(wall), DenoiseMS: ms(denoise), Segments: segments,
		SegmentMS: float64(segmentMS), Retries: retries}
	if rec != nil {
		cp.HandoffMS = handoffs(o, rec.Ended(), id, segments)
	}
	segs, err := r.store.ListSegments(ctx, id)
	if err != nil || len(segs) == 0 || segs[0].TailKey == "" {
		return CriticalPath{}, fmt.Errorf("critical path: the first segment's tail: %d segments, %v", len(segs), err)
	}
	tail, err := r.blob.Stat(ctx, blob.Key(segs[0].TailKey))
	if err != nil {
		return CriticalPath{}, fmt.Errorf("critical path: %w", err)
	}
	cp.TailBytes = tail.Size
	o.logf("critical path: %+v", cp)
	return cp, nil
}

var (
	recorderOnce sync.Once
	recorder     *tracetest.SpanRecorder
)

// spans returns the process's span recorder, installed as the global tracer
// provider the first time (globals bind once) when -v asks for the
// hand-off breakdown; nil otherwise.
func (o Options) spans() *tracetest.SpanRecorder {
	if o.Log == nil {
		return nil
	}
	recorderOnce.Do(func() {
		recorder = tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder)))
		otel.SetTextMapPropagator(propagation.TraceContext{})
	})
	return recorder
}

// handoffs logs, from a chain job's spans, the median time of each step of
// a hand-off: from segment k−1's denoise end to segment k's task entering
// the stream (tail upload, TAIL_READY, the dispatcher), to a worker taking
// it (the queue), to its denoising starting (the tail's fetch, the engine).
func handoffs(o Options, spans []sdktrace.ReadOnlySpan, job string, segments int) (toStreamMS float64) {
	type marks struct{ denoiseStart, denoiseEnd, enqueued, taken time.Time }
	seg := make([]marks, segments)
	for _, s := range spans {
		var idx int64 = -1
		mine := false
		for _, a := range s.Attributes() {
			switch a.Key {
			case telemetry.AttrSegment:
				idx = a.Value.AsInt64()
			case telemetry.AttrJob:
				mine = a.Value.AsString() == job
			}
		}
		if !mine {
			continue
		}
		if idx < 0 || idx >= int64(segments) {
			continue
		}
		switch s.Name() {
		case "segment.queue":
			seg[idx].enqueued, seg[idx].taken = s.StartTime(), s.EndTime()
		case "segment.denoise":
			seg[idx].denoiseStart, seg[idx].denoiseEnd = s.StartTime(), s.EndTime()
		}
	}
	var toStream, queue, toStart []time.Duration
	for k := 1; k < segments; k++ {
		p, c := seg[k-1], seg[k]
		if p.denoiseEnd.IsZero() || c.enqueued.IsZero() || c.denoiseStart.IsZero() {
			continue
		}
		toStream = append(toStream, c.enqueued.Sub(p.denoiseEnd))
		queue = append(queue, c.taken.Sub(c.enqueued))
		toStart = append(toStart, c.denoiseStart.Sub(c.taken))
	}
	med := func(d []time.Duration) time.Duration {
		if len(d) == 0 {
			return 0
		}
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	o.logf("critical path: per hand-off (median of %d): denoise end → task in the stream %v, in the queue %v, taken → denoise start %v",
		len(toStream), med(toStream), med(queue), med(toStart))
	return ms(med(toStream))
}

// RunThroughput pushes independent sim segments (0 ms, discard encoder)
// through one worker's slots and measures DONE commits per second between
// the first and the last tenth of the run, and where the CPUs went then:
// on the test settings, then on a durable stack.
func RunThroughput(ctx context.Context, o Options) (Throughput, error) {
	tp, d, err := bench.OnBothStacks(ctx, func(ctx context.Context, durable bool) (Throughput, error) { return throughput(ctx, o, durable) })
	tp.Durable = &d
	return tp, err
}

func throughput(ctx context.Context, o Options, durable bool) (Throughput, error) {
	const slots, pipeline = 32, 4
	// The window holds the worker's slots and its pipelines, slots × (1 +
	// pipeline), and as much again waiting in NATS, so that the worker never
	// waits for admission: the loop is then bound by the CPUs, not by one
	// segment's round trip through the control plane.
	window := 2 * slots * (1 + pipeline)
	total := 20000
	if o.Short {
		total = 1000
	}
	r, err := setupStack(ctx, durable)
	if err != nil {
		return Throughput{}, err
	}
	defer r.close()
	if err := r.services(ctx, "tp", window, false, worker.Config{ID: "bench", Backend: "sim", Slots: slots, Encoder: worker.EncoderDiscard,
		Pipeline: pipeline}); err != nil {
		return Throughput{}, err
	}
	// Dirty pages left by what ran before (a stitch of an hour of video)
	// would be written back in the middle of the measurement.
	syscall.Sync()
	jobs := 10
	per := total / jobs
	for j := range jobs {
		spec := fmt.Sprintf(`{"id":"tp-%d","prompt":"x","model":"sim","mode":"MODE_INDEPENDENT","durationFrames":%d,`+
			`"windowFrames":3,"overlapFrames":1,"width":64,"height":64,"steps":1,"fps":24,"pool":"tp"}`, j, 2*per+1)
		if err := r.submit(ctx, spec); err != nil {
			return Throughput{}, err
		}
	}
	at := func(n int) (cpuMark, error) {
		deadline := time.Now().Add(10 * time.Minute)
		for time.Now().Before(deadline) {
			done, err := r.store.CountSegments(ctx, store.SegDone)
			if err != nil {
				return cpuMark{}, err
			}
			if done >= n {
				return markCPU(r.st.PostgresPID())
			}
			time.Sleep(25 * time.Millisecond) // counting is a scan: poll gently, not to slow what is measured
		}
		return cpuMark{}, fmt.Errorf("throughput: %d segments not done in time", n)
	}
	lo, hi := total/10, total-total/10
	m0, err := at(lo)
	if err != nil {
		return Throughput{}, err
	}
	m1, err := at(hi)
	if err != nil {
		return Throughput{}, err
	}
	tp := Throughput{SegmentsPerS: float64(hi-lo) / m1.at.Sub(m0.at).Seconds(), Segments: total, Slots: slots, Window: window,
		CPU: share(m0, m1), Stack: bench.StackName(durable)}
	o.logf("throughput: %+v", tp)
	return tp, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
