package infer_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/plan"
)

// discard is a sink that touches each frame and allocates nothing.
type discard struct {
	tail, last time.Time
	sum        byte
}

func (d *discard) Step(int, int) error { return nil }
func (d *discard) Tail([]byte) error   { d.tail = time.Now(); return nil }
func (d *discard) Frame(f infer.Frame) error {
	d.sum += f.RGB[len(f.RGB)-1]
	d.last = time.Now()
	return nil
}

// BenchmarkRef720p: one 720p segment of 121 frames at 30 steps, the shape of
// a SkyReels-V2 720P window. Reports frames/s and the seconds spent
// denoising (until the tail state) and decoding (after it).
func BenchmarkRef720p(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			e := open(b, "ref", infer.WithThreads(threads))
			r := infer.Request{Prompt: "a lighthouse at dusk", Seed: 1, Width: 1280, Height: 720, Frames: 121, Steps: 30,
				Guidance: 6, TailFrames: 37}
			d := &discard{}
			var den, dec time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if err := e.Run(context.Background(), r, d); err != nil {
					b.Fatal(err)
				}
				den += d.tail.Sub(start)
				dec += d.last.Sub(d.tail)
			}
			n := float64(b.N)
			b.ReportMetric(float64(r.Frames)*n/(den+dec).Seconds(), "frames/s")
			b.ReportMetric(den.Seconds()/n, "denoise-s/op")
			b.ReportMetric(dec.Seconds()/n, "decode-s/op")
		})
	}
}

// BenchmarkRefTalk720p: BenchmarkRef720p's segment as a talking head (121
// reference frames, a voice at 16 kHz), whose scene is the reference with
// the mouth painted on, encoded, instead of the prompt's. Compare with
// BenchmarkRef720p: encoding 121 frames of 720p adds about a quarter to the
// time until the tail (2.4 s against 2.0 s at 2 threads, measured once on
// a shared 2-core machine).
func BenchmarkRefTalk720p(b *testing.B) {
	e := open(b, "ref", infer.WithThreads(2))
	const frames, rate = 121, 16000
	audio := make([]float32, plan.SampleAt(frames, 24, rate))
	for i := range audio {
		audio[i] = float32(0.3 * math.Sin(float64(i)*0.07) * math.Sin(float64(i)*0.0004))
	}
	ref := make([]byte, frames*1280*720*3)
	for i := range ref {
		ref[i] = byte(90 + i%7*20)
	}
	r := infer.Request{Prompt: "a newsreader", Seed: 1, Width: 1280, Height: 720, Frames: frames, Steps: 30,
		Guidance: 6, TailFrames: 37, FPS: 24, Audio: audio, AudioRate: rate, Reference: ref}
	d := &discard{}
	var den time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := e.Run(context.Background(), r, d); err != nil {
			b.Fatal(err)
		}
		den += d.tail.Sub(start)
	}
	b.ReportMetric(den.Seconds()/float64(b.N), "denoise-s/op")
}

// BenchmarkFrameCallback: one op is one frame crossing from C into the Go
// sink and back (sim at 16×16 does next to nothing else per frame). Compare
// ns/op with the decode time per frame of BenchmarkRef720p; allocs/op must
// be 0.
func BenchmarkFrameCallback(b *testing.B) {
	e := open(b, "sim")
	const perRun = 1024
	r := infer.Request{Prompt: "x", Width: 16, Height: 16, Frames: perRun, Steps: 1}
	d := &discard{}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += perRun {
		r.Frames = min(perRun, b.N-done)
		if err := e.Run(context.Background(), r, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSimCall: the engine's own overhead per call: validation, the
// binding and one frame, with sim at 0 ms per step.
func BenchmarkSimCall(b *testing.B) {
	e := open(b, "sim")
	r := infer.Request{Prompt: "x", Width: 16, Height: 16, Frames: 2, Overlap: 1, Steps: 1, TailFrames: 1}
	d := &discard{}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Run(context.Background(), r, d); err != nil {
			b.Fatal(err)
		}
	}
}
