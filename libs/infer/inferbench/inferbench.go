// Package inferbench measures the inference library for `make bench`: the
// ref backend's speed at 720p, the cost of the Go↔C frame callback, and the
// sim backend's own overhead per call.
package inferbench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/libs/infer"
)

// Figures is the "infer" object of bench/results.json.
type Figures struct {
	Ref720pFramesPerS float64 `json:"ref_720p_frames_per_s"`
	Ref720pDenoiseS   float64 `json:"ref_720p_denoise_s"`
	Ref720pDecodeS    float64 `json:"ref_720p_decode_s"`
	// The same segment with one thread per CPU (WithThreads), same bytes.
	Ref720pThreads          int     `json:"ref_720p_threads"`
	Ref720pFramesPerSThread float64 `json:"ref_720p_frames_per_s_all_threads"`
	CallbackNSPerFrame      float64 `json:"callback_ns_per_frame"`
	CallbackOverheadPct     float64 `json:"callback_overhead_pct"`
	CallbackAllocs          float64 `json:"callback_allocs_per_frame"`
	SimCallUS               float64 `json:"sim_call_us"`
}

// Options size the measurement; Short is the smoke form CI runs.
type Options struct {
	Short bool
}

// timing is a sink that notes when denoising ends and when the last frame
// arrives, and touches each frame's first byte.
type timing struct {
	tail, last time.Time
	sum        byte
}

func (t *timing) Step(int, int) error { return nil }
func (t *timing) Tail([]byte) error   { t.tail = time.Now(); return nil }
func (t *timing) Frame(f infer.Frame) error {
	t.sum += f.RGB[0]
	t.last = time.Now()
	return nil
}

// Run takes every figure.
func Run(ctx context.Context, o Options) (Figures, error) {
	var f Figures
	w, h, frames, steps, reps := 1280, 720, 121, 30, 3
	if o.Short {
		w, h, frames, steps, reps = 320, 180, 17, 4, 1
	}
	segment := func(threads int) (den, dec, fps float64, err error) {
		ref, err := infer.Open("ref", infer.WithThreads(threads))
		if err != nil {
			return 0, 0, 0, err
		}
		defer ref.Close()
		var dens, decs, fpss []float64
		for range reps {
			t := &timing{}
			start := time.Now()
			req := infer.Request{Prompt: "a lighthouse at dusk", Seed: 1, Width: w, Height: h, Frames: frames, Steps: steps, Guidance: 6, TailFrames: 37 % frames}
			if err := ref.Run(ctx, req, t); err != nil {
				return 0, 0, 0, fmt.Errorf("ref run: %w", err)
			}
			dens = append(dens, t.tail.Sub(start).Seconds())
			decs = append(decs, t.last.Sub(t.tail).Seconds())
			fpss = append(fpss, float64(frames)/t.last.Sub(start).Seconds())
		}
		return bench.Median(dens), bench.Median(decs), bench.Median(fpss), nil
	}
	var err error
	if f.Ref720pDenoiseS, f.Ref720pDecodeS, f.Ref720pFramesPerS, err = segment(1); err != nil {
		return f, err
	}
	f.Ref720pThreads = runtime.NumCPU()
	if _, _, f.Ref720pFramesPerSThread, err = segment(f.Ref720pThreads); err != nil {
		return f, err
	}

	// The callback: the sim backend at 16×16 does next to nothing per frame,
	// so its time per frame bounds the cost of crossing into Go and back.
	sim, err := infer.Open("sim")
	if err != nil {
		return f, err
	}
	defer sim.Close()
	const n = 1024
	cbReq := infer.Request{Prompt: "x", Width: 16, Height: 16, Frames: n, Steps: 1}
	sink := &timing{}
	best := time.Duration(1 << 62)
	for range 5 {
		start := time.Now()
		if err := sim.Run(ctx, cbReq, sink); err != nil {
			return f, err
		}
		best = min(best, time.Since(start))
	}
	f.CallbackNSPerFrame = float64(best.Nanoseconds()) / n
	decodePerFrame := f.Ref720pDecodeS / float64(frames) * 1e9
	f.CallbackOverheadPct = 100 * f.CallbackNSPerFrame / decodePerFrame
	// Go-heap allocations per frame, with a context that cannot be cancelled
	// (a cancellable one adds a watcher per run, never per frame).
	f.CallbackAllocs = testing.AllocsPerRun(3, func() { _ = sim.Run(context.Background(), cbReq, sink) }) / n

	callReq := infer.Request{Prompt: "x", Width: 16, Height: 16, Frames: 1, Steps: 1}
	calls := 2000
	if o.Short {
		calls = 200
	}
	start := time.Now()
	for range calls {
		if err := sim.Run(ctx, callReq, sink); err != nil {
			return f, err
		}
	}
	f.SimCallUS = float64(time.Since(start).Microseconds()) / float64(calls)
	return f, nil
}
