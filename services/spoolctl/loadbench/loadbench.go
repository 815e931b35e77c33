// Package loadbench puts a burst of jobs on the whole system for `make
// bench` (id load): the dispatcher, the stitcher, the gateway and a worker
// run as child processes (bin/spool-*, from `make build`) against a
// devstack, and every job of a burst is published at once to
// spool.jobs.submit (asynchronously, all PubAcks awaited).
//
// Each job is a chain of small segments on the sim backend (labelled: it
// sleeps StepMS a denoising step and emits cheap 64×64 frames), encoded by
// the real encoder (ffmpeg, libx264) and stitched by the real stitcher
// into a final MP4, so the control plane, the encoder processes, MinIO and
// the stitcher all carry the load. Half of the jobs are tenant A's,
// submitted first, then tenant B's.
//
// It measures, per burst size: the wall time to the last job succeeded;
// the peak RSS of each service (VmHWM, and the largest VmRSS sampled),
// whose growth from the smallest burst to the largest says whether memory
// is bounded; the latency of GET /status/{id} (p50, p99) for a client
// polling random jobs at a steady rate through the run; and fairness: when
// each tenant's first segment started and its jobs finished, and how the
// two tenants' segment starts interleave. At the end it checks, in
// Postgres, that every job succeeded with its final video in MinIO, and
// that nothing is left in the work queues.
package loadbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/store"
)

// Options size the run. Zero values take the defaults.
type Options struct {
	// Jobs are the burst sizes, each run on a fresh stack and fleet;
	// default 250 and 1,000 (100 when Short).
	Jobs []int
	// Segments is each job's chain length; default 2.
	Segments int
	// Slots is the worker's slot count; default 8.
	Slots int
	// StepMS and Steps are the sim backend's time per denoising step and
	// the steps per segment; default 5 ms × 2.
	StepMS, Steps int
	// PollRate is the /status requests per second; default 50.
	PollRate int
	// BinDir holds the services' binaries; default "bin".
	BinDir string
	// Short is the smoke form `make test` runs: one burst of 100 jobs.
	Short bool
	// Log receives progress; nil discards it. With a Log, the services'
	// logs are kept (their directory is logged).
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if len(o.Jobs) == 0 {
		o.Jobs = []int{250, 1000}
		if o.Short {
			o.Jobs = []int{100}
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Segments, 2)
	def(&o.Slots, 8)
	def(&o.StepMS, 5)
	def(&o.Steps, 2)
	def(&o.PollRate, 50)
	if o.BinDir == "" {
		o.BinDir = "bin"
	}
	return o
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "load: "+format+"\n", args...)
	}
}

// Load is the "load" object of bench/results.json: every burst's figures,
// and the largest burst's headline with the growth of peak RSS from the
// smallest burst to it.
type Load struct {
	Workload string  `json:"workload"`
	Bursts   []Burst `json:"bursts"`

	Jobs                int     `json:"jobs"`
	WallS               float64 `json:"wall_s"`
	StatusP50MS         float64 `json:"status_p50_ms"`
	StatusP99MS         float64 `json:"status_p99_ms"`
	DispatcherPeakRSSMB float64 `json:"dispatcher_peak_rss_mb"`
	StitcherPeakRSSMB   float64 `json:"stitcher_peak_rss_mb"`
	// DispatcherRSSGrowth and StitcherRSSGrowth are the largest burst's
	// peak RSS ÷ the smallest's (1 when only one burst ran).
	DispatcherRSSGrowth float64 `json:"dispatcher_rss_growth"`
	StitcherRSSGrowth   float64 `json:"stitcher_rss_growth"`
}

// Burst is one burst's figures.
type Burst struct {
	Jobs     int `json:"jobs"`
	Segments int `json:"segments"`
	// BurstMS is from the first publish to the last PubAck.
	BurstMS float64 `json:"burst_ms"`
	// WallS is from the first publish to the last job's success in
	// Postgres.
	WallS        float64           `json:"wall_s"`
	JobsPerS     float64           `json:"jobs_per_s"`
	SegmentsPerS float64           `json:"segments_per_s"`
	Status       Status            `json:"status"`
	Memory       map[string]Memory `json:"memory"`
	Fairness     Fairness          `json:"fairness"`
	// Retries counts the attempts beyond each segment's first;
	// RetryReasons says why the first few were retried.
	Retries      int      `json:"retries"`
	RetryReasons []string `json:"retry_reasons,omitempty"`
	// LoadAvg is the mean of the machine's 1-minute load average over
	// the burst: the benchmark's own processes and whatever else ran.
	LoadAvg float64 `json:"load_avg"`
}

// Status is the /status client's figures: the latency of every answer,
// and by the state of the job it was about ("404" for a job the
// dispatcher had not taken in yet).
type Status struct {
	RatePerS     int     `json:"rate_per_s"`
	AnsweredPerS float64 `json:"answered_per_s"`
	Latency
	ByState map[string]Latency `json:"by_state"`
	Codes   map[string]int     `json:"codes"`
	// Skipped counts ticks with maxInFlight requests still unanswered.
	Skipped int `json:"skipped"`
}

// Latency is the latency of the answers to requests, in milliseconds.
type Latency struct {
	Requests int     `json:"requests"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// Memory is one service's resident memory over a burst, in MiB.
type Memory struct {
	PeakMB       float64 `json:"peak_mb"`        // VmHWM at the end
	MaxSampledMB float64 `json:"max_sampled_mb"` // the largest VmRSS sampled
	EndMB        float64 `json:"end_mb"`         // VmRSS at the end
}

// Run runs every burst of o and returns their figures. A burst needs at
// least 2 jobs, one of each tenant.
func Run(ctx context.Context, o Options) (Load, error) {
	o = o.withDefaults()
	for _, n := range o.Jobs {
		if n < 2 {
			return Load{}, fmt.Errorf("loadbench: a burst of %d jobs: want ≥ 2, one of each tenant", n)
		}
	}
	l := Load{Workload: fmt.Sprintf("chains of %d sim segments (%d steps × %d ms, labelled), 64×64, 13-frame windows, "+
		"ffmpeg libx264, real stitcher; one worker of %d slots; /status polled at %d/s",
		o.Segments, o.Steps, o.StepMS, o.Slots, o.PollRate)}
	for _, n := range o.Jobs {
		r, err := runBurst(ctx, o, n)
		if err != nil {
			return l, err
		}
		o.logf("%d jobs: %+v", n, r)
		l.Bursts = append(l.Bursts, r)
	}
	first, last := l.Bursts[0], l.Bursts[len(l.Bursts)-1]
	l.Jobs, l.WallS, l.StatusP50MS, l.StatusP99MS = last.Jobs, last.WallS, last.Status.P50MS, last.Status.P99MS
	l.DispatcherPeakRSSMB, l.StitcherPeakRSSMB = last.Memory["dispatcher"].PeakMB, last.Memory["stitcher"].PeakMB
	l.DispatcherRSSGrowth = last.Memory["dispatcher"].PeakMB / first.Memory["dispatcher"].PeakMB
	l.StitcherRSSGrowth = last.Memory["stitcher"].PeakMB / first.Memory["stitcher"].PeakMB
	return l, nil
}

// runBurst runs one burst of n jobs on a fresh stack and fleet.
func runBurst(ctx context.Context, o Options, n int) (r Burst, err error) {
	logs, err := os.MkdirTemp("", "spool-load-")
	if err != nil {
		return Burst{}, fmt.Errorf("loadbench: %w", err)
	}
	defer func() {
		switch {
		case err != nil:
			err = fmt.Errorf("%w (the services' logs are in %s)", err, logs)
		case o.Log != nil:
			o.logf("%d jobs: the services' logs are in %s", n, logs)
		default:
			_ = os.RemoveAll(logs)
		}
	}()
	st, err := devstack.Start(ctx, devstack.Options{NATS: true, Postgres: true, MinIO: true})
	if err != nil {
		return Burst{}, err
	}
	defer func() { _ = st.Stop() }()
	b, err := bus.Connect(ctx, st.NATSConfig())
	if err != nil {
		return Burst{}, err
	}
	defer func() { _ = b.Close() }()
	if err := b.Declare(ctx); err != nil {
		return Burst{}, err
	}
	pg := st.PostgresConfig()
	pg.MaxConns = 4
	db, err := store.Open(ctx, pg)
	if err != nil {
		return Burst{}, err
	}
	defer db.Close()
	bl, err := blob.New(st.S3Config())
	if err != nil {
		return Burst{}, err
	}
	f, err := startFleet(ctx, st, b, o, logs)
	if err != nil {
		return Burst{}, err
	}
	defer f.stop()
	o.logf("%d jobs: the fleet is up (logs in %s)", n, logs)

	jobs := jobsOf(n)
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan error, 1)
	go func() { sampled <- f.sample(sctx, 100*time.Millisecond) }()
	p := newPoller(f.gateway, f.key, jobs)
	polled := make(chan struct{})
	go func() { p.run(sctx, o.PollRate); close(polled) }()

	t0 := time.Now()
	err = burst(ctx, b, o, jobs)
	burstTime := time.Since(t0)
	if err == nil {
		o.logf("%d jobs published in %v", n, burstTime)
		err = waitDone(ctx, b, db, jobs, time.Minute+time.Duration(n)*time.Second)
	}
	polling := time.Since(t0)
	stopSampling()
	<-polled
	if serr := <-sampled; err == nil {
		err = serr
	}
	if err != nil {
		return Burst{}, err
	}
	mem, err := f.memory()
	if err != nil {
		return Burst{}, err
	}
	if err := drained(ctx, b, db, 30*time.Second); err != nil {
		return Burst{}, err
	}
	jrs, srs, retries, err := verify(ctx, db, bl, o, jobs)
	if err != nil {
		return Burst{}, err
	}
	var last time.Time
	for _, j := range jrs {
		if j.finished.After(last) {
			last = j.finished
		}
	}
	wall := last.Sub(t0)
	return Burst{Jobs: n, Segments: n * o.Segments, BurstMS: ms(burstTime), WallS: wall.Seconds(),
		JobsPerS: float64(n) / wall.Seconds(), SegmentsPerS: float64(n*o.Segments) / wall.Seconds(),
		Status: p.figures(o.PollRate, polling), Memory: mem, Fairness: fairness(t0, jrs, srs), Retries: len(retries), RetryReasons: retries[:min(len(retries), 10)],
		LoadAvg: f.meanLoad()}, nil
}
