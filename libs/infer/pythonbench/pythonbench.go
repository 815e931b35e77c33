// Package pythonbench measures the python backend for `make bench
// BENCH=python` and the GPU check: seconds per diffusion-forcing window of
// skyreels_df.py through the worker's path (Go → the C engine → the
// embedded Python), the same window run directly in Python by
// libs/infer/python/bench_direct.py, their ratio, and the time to open an
// engine (the model load each worker slot pays once).
package pythonbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/infer"
)

// Figures is the "python" (CPU) or "gpu" object of bench/results.json.
type Figures struct {
	Model   string `json:"model"`   // the engine's model_version: what was loaded
	Device  int    `json:"device"`  // CUDA device index; -1 the CPU
	Width   int    `json:"width"`   // pixels
	Height  int    `json:"height"`  // pixels
	Frames  int    `json:"frames"`  // frames per window
	Steps   int    `json:"steps"`   // denoise steps per window
	Windows int    `json:"windows"` // timed windows per path and round
	// WorkerS and DirectS are the median seconds per window through the
	// worker's path and directly in Python, over every round.
	WorkerS float64 `json:"worker_s_per_window"`
	DirectS float64 `json:"direct_s_per_window"`
	// Ratio is DirectS / WorkerS: the worker path's speed as a fraction of
	// the direct call's (1 = no cost; the targets are ≥ 0.95 on the CPU and
	// ≥ 0.98 on a GPU).
	Ratio float64 `json:"ratio"`
	// StepS is WorkerS over Steps (decode included, so an upper bound).
	StepS float64 `json:"worker_s_per_step"`
	// OpenS is each slot's engine open, in order: the model load.
	OpenS []float64 `json:"open_s_per_slot"`
	// DirectStepS is the direct path's seconds per denoise step: its
	// windows without their VAE decode (DirectDecodeS, the median) over
	// Steps, the text encoder's share included.
	DirectStepS   float64 `json:"direct_denoise_s_per_step"`
	DirectDecodeS float64 `json:"direct_decode_s"`
	// DirectLoadS is bench_direct.py's load of the same pipeline.
	DirectLoadS float64 `json:"direct_load_s"`
	// On a GPU, from NVML during the worker path's windows: the mean
	// utilisation and the peak memory used (MiB); and the direct path's
	// peak memory allocated by torch (MiB).
	GPUUtilPct        float64   `json:"gpu_util_pct,omitempty"`
	GPUPeakMemMiB     float64   `json:"gpu_peak_mem_mib,omitempty"`
	DirectPeakMemMiB  float64   `json:"direct_peak_mem_mib,omitempty"`
	Deterministic     bool      `json:"deterministic"`
	TorchThreads      int       `json:"torch_threads"`
	DirectSecondsRuns []float64 `json:"direct_runs_s"`
	WorkerSecondsRuns []float64 `json:"worker_runs_s"`
}

// Options say what to measure. Zero values take the tiny pipeline's
// defaults: 128×64, 17 frames, 4 steps on the CPU, deterministic.
type Options struct {
	Root      string // repository root (libs/infer/build, libs/infer/python, .spool)
	Python    string // interpreter of the direct runs; default .spool/venv/bin/python
	PluginDir string // default Root/libs/infer/build
	ModelDir  string // diffusers folder; default .spool/models/skyreels-v2-df-tiny
	Model     string // catalog name reported to the engine; default skyreels-v2-df-tiny
	Params    string // more engine parameters, e.g. init=random
	Device    int    // CUDA index; -1 the CPU
	Width     int
	Height    int
	Frames    int
	Steps     int
	Shift     float64
	Windows   int    // timed windows per path and round; default 5
	Rounds    int    // rounds, each the worker path then the direct one; default 2
	Slots     int    // engines opened, to time the load of each; default 2
	ExtraPath string // more module folders (':'-separated), e.g. carried wheels
}

func (o *Options) defaults() {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	set(&o.Width, 128)
	set(&o.Height, 64)
	set(&o.Frames, 17)
	set(&o.Steps, 4)
	set(&o.Windows, 5)
	set(&o.Rounds, 2)
	set(&o.Slots, 2)
	if o.Shift == 0 {
		o.Shift = 8
	}
	if o.Python == "" {
		o.Python = filepath.Join(o.Root, ".spool/venv/bin/python")
	}
	if o.PluginDir == "" {
		o.PluginDir = filepath.Join(o.Root, "libs/infer/build")
	}
	if o.ModelDir == "" {
		o.ModelDir = filepath.Join(o.Root, ".spool/models/skyreels-v2-df-tiny")
	}
	if o.Model == "" {
		o.Model = "skyreels-v2-df-tiny"
	}
}

// sink touches every frame as a worker's encoder would read it.
type sink struct{ sum byte }

func (s *sink) Step(int, int) error { return nil }
func (s *sink) Tail([]byte) error   { return nil }
func (s *sink) Frame(f infer.Frame) error {
	for i := 0; i < len(f.RGB); i += 4096 {
		s.sum += f.RGB[i]
	}
	return nil
}

// Run takes the figures: Slots engines opened (each timed), then Rounds of
// Windows windows through the first engine and as many directly, after a
// warm-up window on each path.
func Run(ctx context.Context, o Options) (Figures, error) {
	o.defaults()
	f := Figures{Device: o.Device, Width: o.Width, Height: o.Height, Frames: o.Frames, Steps: o.Steps, Windows: o.Windows}
	modules := filepath.Join(o.Root, "libs/infer/python")
	if o.ExtraPath != "" {
		modules += ":" + o.ExtraPath
	}
	params := "module=skyreels_df;path=" + modules + ";shift=" + strconv.FormatFloat(o.Shift, 'g', -1, 64)
	if o.Device < 0 {
		params += ";deterministic=1"
		f.Deterministic = true
	}
	if o.Params != "" {
		params += ";" + o.Params
	}
	opts := []infer.Option{infer.WithPluginDir(o.PluginDir), infer.WithModel(o.Model), infer.WithWeightsDir(o.ModelDir), infer.WithParams(params)}
	if o.Device >= 0 {
		opts = append(opts, infer.WithDevice(o.Device))
	}
	var engines []*infer.Engine
	defer func() {
		for _, e := range engines {
			_ = e.Close()
		}
	}()
	for range o.Slots {
		start := time.Now()
		e, err := infer.Open("python", opts...)
		if err != nil {
			return f, fmt.Errorf("pythonbench: open: %w", err)
		}
		f.OpenS = append(f.OpenS, time.Since(start).Seconds())
		engines = append(engines, e)
	}
	f.Model = engines[0].Info().ModelVersion
	req := infer.Request{Prompt: "a lighthouse in a storm", Seed: 1, Width: o.Width, Height: o.Height, Frames: o.Frames,
		Steps: o.Steps, Guidance: 5, FPS: 24}
	window := func() (float64, error) {
		start := time.Now()
		if err := engines[0].Run(ctx, req, &sink{}); err != nil {
			return 0, fmt.Errorf("pythonbench: window: %w", err)
		}
		return time.Since(start).Seconds(), nil
	}
	if _, err := window(); err != nil { // warm-up
		return f, err
	}
	sampler := newSampler(o.Device)
	defer sampler.close()
	for range o.Rounds {
		sampler.start()
		for range o.Windows {
			s, err := window()
			if err != nil {
				return f, err
			}
			f.WorkerSecondsRuns = append(f.WorkerSecondsRuns, s)
		}
		sampler.stop()
		d, err := direct(ctx, o, req)
		if err != nil {
			return f, err
		}
		f.DirectSecondsRuns = append(f.DirectSecondsRuns, d.Runs...)
		f.DirectLoadS, f.TorchThreads = d.LoadS, d.TorchThreads
		f.DirectStepS, f.DirectDecodeS = d.StepS, d.DecodeS
		f.DirectPeakMemMiB = max(f.DirectPeakMemMiB, d.PeakMemMiB)
	}
	f.WorkerS, f.DirectS = bench.Median(f.WorkerSecondsRuns), bench.Median(f.DirectSecondsRuns)
	f.Ratio = f.DirectS / f.WorkerS
	f.StepS = f.WorkerS / float64(o.Steps)
	f.GPUUtilPct, f.GPUPeakMemMiB = sampler.result()
	return f, nil
}

// directResult is what bench_direct.py prints.
type directResult struct {
	Median       float64   `json:"seconds_per_window"`
	Runs         []float64 `json:"runs"`
	LoadS        float64   `json:"load_seconds"`
	TorchThreads int       `json:"torch_threads"`
	PeakMemMiB   float64   `json:"peak_mem_mib"`
	StepS        float64   `json:"denoise_seconds_per_step"`
	DecodeS      float64   `json:"decode_seconds"`
}

// direct runs bench_direct.py for the same window, in its own process.
func direct(ctx context.Context, o Options, req infer.Request) (directResult, error) {
	args := []string{"-W", "ignore", filepath.Join(o.Root, "libs/infer/python/bench_direct.py"), "--model", o.ModelDir,
		"--n", strconv.Itoa(o.Windows), "--warmup", "1", "--frames", strconv.Itoa(req.Frames), "--width", strconv.Itoa(req.Width),
		"--height", strconv.Itoa(req.Height), "--steps", strconv.Itoa(req.Steps), "--guidance", "5",
		"--shift", strconv.FormatFloat(o.Shift, 'g', -1, 64), "--fps", "24", "--seed", "1", "--prompt", req.Prompt,
		"--device", strconv.Itoa(o.Device)}
	if o.Device < 0 {
		args = append(args, "--deterministic")
	}
	if o.Params != "" {
		args = append(args, "--params", o.Params)
	}
	cmd := exec.CommandContext(ctx, o.Python, args...)
	cmd.Env = append(os.Environ(), "HF_HUB_OFFLINE=1", "PYTHONPATH="+o.ExtraPath)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return directResult{}, fmt.Errorf("pythonbench: %s %v: %w", o.Python, args, err)
	}
	var d directResult
	if err := json.Unmarshal(out, &d); err != nil || len(d.Runs) == 0 {
		return d, fmt.Errorf("pythonbench: bench_direct.py printed %q: %v", out, err)
	}
	return d, nil
}

// sampler reads NVML every 100 ms while started: GPU utilisation and
// memory used of the device. On the CPU it does nothing; on a GPU without
// NVML it says so on stderr and the figures stay 0.
type sampler struct {
	m     *gpu.Manager
	uuid  string
	mu    sync.Mutex
	util  []float64
	peak  uint64
	quit  chan struct{}
	ended chan struct{}
}

func newSampler(device int) *sampler {
	s := &sampler{}
	if device < 0 {
		return s
	}
	m, err := gpu.Open()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pythonbench: no GPU utilisation or memory figures: %v\n", err)
		return s
	}
	for _, g := range m.GPUs() {
		if g.Index == device {
			s.m, s.uuid = m, g.UUID
		}
	}
	if s.m == nil {
		fmt.Fprintf(os.Stderr, "pythonbench: no GPU utilisation or memory figures: NVML lists no GPU %d\n", device)
		_ = m.Close()
	}
	return s
}

func (s *sampler) start() {
	if s.m == nil {
		return
	}
	s.quit, s.ended = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.ended)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
				if st, err := s.m.Stats(s.uuid); err == nil {
					s.mu.Lock()
					s.util = append(s.util, float64(st.UtilizationPct))
					s.peak = max(s.peak, st.MemoryUsed)
					s.mu.Unlock()
				}
			}
		}
	}()
}

func (s *sampler) stop() {
	if s.m == nil {
		return
	}
	close(s.quit)
	<-s.ended
}

// result is the mean utilisation (percent) and peak memory used (MiB).
func (s *sampler) result() (float64, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.util) == 0 {
		return 0, 0
	}
	var sum float64
	for _, u := range s.util {
		sum += u
	}
	return sum / float64(len(s.util)), float64(s.peak) / (1 << 20)
}

func (s *sampler) close() {
	if s.m != nil {
		_ = s.m.Close()
	}
}
