package infer_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/plan"
)

// The talking head's test sizes: a 16×12 latent grid, 24 fps, 16 kHz.
const talkW, talkH, talkFPS, talkRate = 128, 96, 24, 16000

// talkTrack is a sound track of the given frames at talkRate: silence and
// bursts of sines of several levels, whose edges fall anywhere within a
// frame, as speech does.
func talkTrack(frames int) []float32 {
	n := int(plan.SampleAt(int64(frames), talkFPS, talkRate))
	track := make([]float32, n)
	// Bursts in seconds: start, end, peak amplitude, frequency.
	bursts := []struct{ from, to, amp, hz float64 }{
		{0.21, 0.43, 0.6, 220}, {0.55, 0.70, 0.02, 330}, {0.81, 1.12, 0.15, 180},
		{1.30, 1.39, 0.35, 260}, {1.52, 1.83, 0.06, 200}, {1.95, 2.20, 0.9, 240},
		{2.31, 2.52, 0.01, 300}, {2.60, 2.75, 0.25, 210},
	}
	for _, b := range bursts {
		for i := int(b.from * talkRate); i < min(n, int(b.to*talkRate)); i++ {
			track[i] = float32(b.amp * math.Sin(2*math.Pi*b.hz*float64(i)/talkRate))
		}
	}
	return track
}

// talkFace is a reference frame: a skin tone, lighter at the top, with two
// darker eyes; frame i moves the eyes a little (a template video).
func talkFace(i int) []byte {
	img := make([]byte, talkW*talkH*3)
	for y := range talkH {
		for x := range talkW {
			p := img[(y*talkW+x)*3:]
			p[0], p[1], p[2] = byte(205-30*y/talkH), byte(165-25*y/talkH), byte(135-20*y/talkH)
			for _, ex := range []int{talkW*3/10 + i%3, talkW*7/10 + i%3} {
				if dx, dy := x-ex, y-talkH*2/5; dx*dx+dy*dy < 25 {
					p[0], p[1], p[2] = 70, 60, 60
				}
			}
		}
	}
	return img
}

// talkReq is the segment of frames [first, first+frames) of a talking
// head on track, with overlap conditioning frames from cond (nil for none).
func talkReq(track []float32, first, frames, overlap int, cond []byte) infer.Request {
	lo, hi := plan.Samples(int64(first), int64(first+frames), talkFPS, talkRate)
	ref := make([]byte, 0, frames*talkW*talkH*3)
	for i := range frames {
		ref = append(ref, talkFace(first+i)...)
	}
	return infer.Request{Prompt: "a newsreader", Seed: uint64(100 + first), Width: talkW, Height: talkH,
		Frames: frames, Overlap: overlap, Steps: 6, Guidance: 6, FirstFrame: int64(first), Cond: cond,
		TailFrames: overlap, FPS: talkFPS, Audio: track[lo:hi], AudioRate: talkRate, Reference: ref}
}

// mouthDarkness is how dark the mouth's box is in an RGB24 frame: 255 less
// its mean level over channels.
func mouthDarkness(rgb []byte) float64 {
	x0, x1, y0, y1 := talkW*38/100, talkW*62/100, talkH*61/100, talkH*79/100
	sum := 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			p := rgb[(y*talkW+x)*3:]
			sum += int(p[0]) + int(p[1]) + int(p[2])
		}
	}
	return 255 - float64(sum)/float64(3*(x1-x0)*(y1-y0))
}

// loudness is the level of frame t's own samples of track, in dBFS,
// clamped to -50..-10 (the mouth's range).
func loudness(track []float32, t int) float64 {
	lo, hi := plan.Samples(int64(t), int64(t+1), talkFPS, talkRate)
	sum := 0.0
	for _, s := range track[lo:hi] {
		sum += float64(s) * float64(s)
	}
	db := 20 * math.Log10(math.Sqrt(sum/float64(hi-lo))+1e-9)
	return min(-10, max(-50, db))
}

// xcorr is the Pearson correlation of a[i] and b[i+lag] over the indices
// both have.
func xcorr(a, b []float64, lag int) float64 {
	var x, y []float64
	for i := range a {
		if j := i + lag; j >= 0 && j < len(b) {
			x, y = append(x, a[i]), append(y, b[j])
		}
	}
	var mx, my float64
	for i := range x {
		mx, my = mx+x[i], my+y[i]
	}
	mx, my = mx/float64(len(x)), my/float64(len(y))
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

// talkChain runs a two-segment talking-head chain on e: frames [0, 41)
// and [33, 74), the second conditioned on the first's tail.
func talkChain(t *testing.T, e *infer.Engine, track []float32) (s1, s2 *collect) {
	t.Helper()
	s1 = run(t, e, talkReq(track, 0, 41, 8, nil))
	return s1, run(t, e, talkReq(track, 33, 41, 8, s1.tail))
}

// TestTalkingHeadFollowsTheAudio: with reference frames and audio, ref
// draws the reference with a mouth whose opening follows each frame's own
// loudness: over a two-segment chain the mouth box's darkness correlates
// with the level of the frame's samples (Pearson > 0.9), best at lag 0
// (no frame of delay either way); in silence the box is as light as the
// reference's, and the chain is seamless byte for byte.
func TestTalkingHeadFollowsTheAudio(t *testing.T) {
	track := talkTrack(74)
	s1, s2 := talkChain(t, open(t, "ref"), track)
	for i := range 8 {
		if !bytes.Equal(s2.frames[i], s1.frames[33+i]) {
			t.Fatalf("segment 2 frame %d differs from segment 1 frame %d", i, 33+i)
		}
	}
	frames := append(append([][]byte{}, s1.frames...), s2.frames[8:]...)
	dark, loud := make([]float64, len(frames)), make([]float64, len(frames))
	quiet, wide := 0.0, 0.0
	for i, f := range frames {
		dark[i], loud[i] = mouthDarkness(f), loudness(track, i)
		switch {
		case loud[i] == -50:
			quiet = max(quiet, math.Abs(dark[i]-mouthDarkness(talkFace(i))))
		case loud[i] == -10:
			wide = max(wide, dark[i]-mouthDarkness(talkFace(i)))
		}
	}
	r0 := xcorr(dark, loud, 0)
	t.Logf("mouth darkness against loudness over %d frames: Pearson %.4f; silent frames within %.2f levels of the "+
		"reference, wide open %.1f levels darker", len(frames), r0, quiet, wide)
	if r0 < 0.9 {
		t.Errorf("the mouth does not follow the audio: Pearson %.4f, want > 0.9", r0)
	}
	for _, lag := range []int{-3, -2, -1, 1, 2, 3} {
		if r := xcorr(dark, loud, lag); r >= r0 {
			t.Errorf("cross-correlation at lag %d (%.4f) is not below lag 0's (%.4f)", lag, r, r0)
		}
	}
	if quiet > 3 || wide < 30 {
		t.Errorf("silent frames differ from the reference by up to %.2f levels in the mouth box (bound 3); a wide "+
			"open mouth darkens it by %.1f (want ≥ 30)", quiet, wide)
	}
}

// TestTalkingHeadExtension: an extension's talking head starts before frame
// 0 (its prefix frames are the input's last ones), where the samples of a
// frame are those of negative indices: the mouth of every new frame still
// follows its own samples.
func TestTalkingHeadExtension(t *testing.T) {
	const first, frames, overlap = -5, 41, 5
	track := talkTrack(frames) // track[0] is the sample at S(first)
	base := plan.SampleAt(first, talkFPS, talkRate)
	r := talkReq(track, 0, frames, overlap, nil)
	r.FirstFrame, r.Audio = first, track[:plan.SampleAt(first+frames, talkFPS, talkRate)-base]
	r.Prefix = bytes.Repeat(talkFace(0), overlap)
	c := run(t, open(t, "ref"), r)
	var dark, loud []float64
	for i := overlap; i < frames; i++ {
		lo, hi := plan.Samples(first+int64(i), first+int64(i)+1, talkFPS, talkRate)
		sum := 0.0
		for _, s := range r.Audio[lo-base : hi-base] {
			sum += float64(s) * float64(s)
		}
		db := 20 * math.Log10(math.Sqrt(sum/float64(hi-lo))+1e-9)
		dark, loud = append(dark, mouthDarkness(c.frames[i])), append(loud, min(-10, max(-50, db)))
	}
	if r0 := xcorr(dark, loud, 0); r0 < 0.9 {
		t.Fatalf("the new frames' mouth does not follow their samples: Pearson %.4f, want > 0.9", r0)
	}
}

// TestTalkingHeadThreadsAreBitIdentical: the talking head's bytes, frames
// and tails, do not depend on the thread count.
func TestTalkingHeadThreadsAreBitIdentical(t *testing.T) {
	track := talkTrack(74)
	a1, a2 := talkChain(t, open(t, "ref", infer.WithThreads(1)), track)
	b1, b2 := talkChain(t, open(t, "ref", infer.WithThreads(3)), track)
	for i := range a1.sums {
		if a1.sums[i] != b1.sums[i] || a2.sums[i] != b2.sums[i] {
			t.Fatalf("frame %d differs between 1 and 3 threads", i)
		}
	}
	if !bytes.Equal(a1.tail, b1.tail) || !bytes.Equal(a2.tail, b2.tail) {
		t.Fatal("tails differ between 1 and 3 threads")
	}
}

// TestTalkingHeadWithoutAudio: reference frames alone are a talking head
// in silence, the mouth closed: the frames are the reference's.
func TestTalkingHeadWithoutAudio(t *testing.T) {
	r := talkReq(talkTrack(17), 0, 17, 0, nil)
	r.Audio, r.AudioRate = nil, 0
	c := run(t, open(t, "ref"), r)
	for i, f := range c.frames {
		if mean, _ := meanAbs(f, talkFace(i)); mean > 3 {
			t.Fatalf("frame %d is %.2f levels from its reference frame on average", i, mean)
		}
	}
}

// TestAudioAndReferenceRefusals: audio and reference frames of the wrong
// size, audio without the frame rate or with a bad rate or sample, and
// audio without reference frames on ref and sim are refused before any
// work, naming the field; sim hands reference frames out as its frames.
func TestAudioAndReferenceRefusals(t *testing.T) {
	track := talkTrack(20)
	good := talkReq(track, 3, 9, 0, nil) // samples [2000, 8000)
	ref, sim := open(t, "ref"), open(t, "sim")
	run(t, ref, good)
	cases := map[string]struct {
		mut  func(*infer.Request)
		want string
	}{
		"audio a sample short": {func(r *infer.Request) { r.Audio = r.Audio[:len(r.Audio)-1] },
			"audio_len 5999: want 6000, the samples of frames [3, 12) at 16000 Hz and 24 fps: [2000, 8000)"},
		"audio a sample long": {func(r *infer.Request) { r.Audio = track[2000:8001] }, "audio_len 6001: want 6000"},
		"reference a byte short": {func(r *infer.Request) { r.Reference = r.Reference[:len(r.Reference)-1] },
			"reference_len 331775: want frames × width × height × 3 = 9 × 128 × 96 × 3 = 331776"},
		"reference a frame short": {func(r *infer.Request) { r.Frames = 10; r.Audio = track[2000:8667] },
			"reference_len 331776: want frames × width × height × 3 = 10 × 128 × 96 × 3"},
		"audio without fps":      {func(r *infer.Request) { r.FPS = 0 }, "audio: fps is 0 (not given)"},
		"audio without rate":     {func(r *infer.Request) { r.AudioRate = 0 }, "audio_rate 0: samples were given"},
		"rate without audio":     {func(r *infer.Request) { r.Audio = nil }, "audio_len 0: want 6000"},
		"rate too low":           {func(r *infer.Request) { r.AudioRate = 4000 }, "audio_rate 4000: want 8000..192000 Hz"},
		"rate too high":          {func(r *infer.Request) { r.AudioRate = 200000 }, "audio_rate 200000: want 8000..192000 Hz"},
		"a sample not a number":  {func(r *infer.Request) { r.Audio = nan(r.Audio, 17) }, "audio: sample 17 is nan"},
		"audio without the head": {func(r *infer.Request) { r.Reference = nil }, "audio without reference frames has nothing to drive"},
	}
	for name, tc := range cases {
		r := good
		tc.mut(&r)
		c := newCollect()
		err := ref.Run(context.Background(), r, c)
		if !errors.Is(err, infer.ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrInvalidRequest naming %q", name, err, tc.want)
		}
		if c.steps != 0 || len(c.frames) != 0 {
			t.Errorf("%s: the engine worked before refusing", name)
		}
	}
	r := good
	r.Reference = nil
	if err := sim.Run(context.Background(), r, newCollect()); !errors.Is(err, infer.ErrInvalidRequest) ||
		!strings.Contains(err.Error(), "audio without reference frames has nothing to drive") {
		t.Errorf("sim, audio without reference frames: %v", err)
	}
	c := run(t, sim, good)
	if !bytes.Equal(bytes.Join(c.frames, nil), good.Reference) {
		t.Error("sim does not hand out the reference frames as its frames")
	}
}

func nan(a []float32, i int) []float32 {
	b := append([]float32(nil), a...)
	b[i] = float32(math.NaN())
	return b
}

// FuzzTalkRequest: no combination of audio and reference sizes, rates,
// frame rates and first frames crashes the engine; invalid ones are
// ErrInvalidRequest, and a valid one runs.
func FuzzTalkRequest(f *testing.F) {
	e, err := infer.Open("ref")
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	f.Add(int64(0), 4, 24, 16000, 2667, 4)              // valid
	f.Add(int64(-2), 4, 25, 8000, 1280, 4)              // valid, an extension's conditioning frames first
	f.Add(int64(0), 4, 24, 16000, 2666, 4)              // a sample short
	f.Add(int64(0), 4, 0, 16000, 2667, 4)               // no fps
	f.Add(int64(1)<<40, 4, 24, 16000, 2667, 4)          // past 2^40
	f.Add(int64(math.MaxInt64-4), 4, 240, 192000, 1, 4) // the last frame at the largest index
	f.Add(int64(-1)<<62, 4, 1, 8000, 0, 0)              // no audio, a rate
	f.Add(int64(0), 4, 24, 0, 0, 3)                     // a frame of reference short
	f.Fuzz(func(t *testing.T, first int64, frames, fps, rate, nAudio, nRef int) {
		if frames < 1 || frames > 8 || nAudio < 0 || nAudio > 1<<16 || nRef < 0 || nRef > 9 {
			return
		}
		r := infer.Request{Prompt: "p", Width: 16, Height: 16, Frames: frames, Steps: 1, FirstFrame: first, FPS: fps,
			AudioRate: rate, Audio: make([]float32, nAudio), Reference: make([]byte, nRef*16*16*3)}
		if first < 0 && first >= -int64(frames-1) { // conditioning frames before 0 need media
			r.Overlap, r.Prefix = int(-first), make([]byte, int(-first)*16*16*3)
		}
		err := e.Run(context.Background(), r, newCollect())
		if err != nil && !errors.Is(err, infer.ErrInvalidRequest) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
