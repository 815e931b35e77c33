package infer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/infer"
)

// collect keeps everything a run produces.
type collect struct {
	steps  int
	tail   []byte
	frames [][]byte
	sums   [][32]byte
	order  []string
	failAt int // frame index at which Frame fails; -1 never
}

func newCollect() *collect { return &collect{failAt: -1} }

func (c *collect) Step(step, steps int) error {
	c.steps = step
	if len(c.order) == 0 || c.order[len(c.order)-1] != "step" {
		c.order = append(c.order, "step")
	}
	return nil
}

func (c *collect) Tail(state []byte) error {
	c.tail = bytes.Clone(state)
	c.order = append(c.order, "tail")
	return nil
}

func (c *collect) Frame(f infer.Frame) error {
	if f.Index == c.failAt {
		return errors.New("disk full")
	}
	if len(c.order) == 0 || c.order[len(c.order)-1] != "frames" {
		c.order = append(c.order, "frames")
	}
	c.frames = append(c.frames, bytes.Clone(f.RGB))
	c.sums = append(c.sums, sha256.Sum256(f.RGB))
	return nil
}

func open(t testing.TB, backend string, opts ...infer.Option) *infer.Engine {
	t.Helper()
	e, err := infer.Open(backend, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func req() infer.Request {
	return infer.Request{Prompt: "a red fox runs through snow", Seed: 7, Width: 128, Height: 72, Frames: 17, Overlap: 0,
		Steps: 6, Guidance: 6, TailFrames: 5}
}

func run(t testing.TB, e *infer.Engine, r infer.Request) *collect {
	t.Helper()
	c := newCollect()
	if err := e.Run(context.Background(), r, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRefInfoAndOrder(t *testing.T) {
	e := open(t, "ref")
	info := e.Info()
	if info.Backend != "ref" || info.LatentChannels != 16 || info.LatentScale != 8 || info.ModelVersion == "" {
		t.Fatalf("info %+v", info)
	}
	c := run(t, e, req())
	if strings.Join(c.order, ",") != "step,tail,frames" || c.steps != 6 || len(c.frames) != 17 {
		t.Fatalf("order %v, %d steps, %d frames", c.order, c.steps, len(c.frames))
	}
	if len(c.frames[0]) != 128*72*3 {
		t.Fatalf("frame of %d bytes", len(c.frames[0]))
	}
	if infer.ABIVersion() != 3 {
		t.Fatalf("ABI version %d, want 3", infer.ABIVersion())
	}
}

func TestRefIsDeterministic(t *testing.T) {
	a, b := run(t, open(t, "ref"), req()), run(t, open(t, "ref"), req())
	for i := range a.sums {
		if a.sums[i] != b.sums[i] {
			t.Fatalf("frame %d differs between two runs", i)
		}
	}
	if !bytes.Equal(a.tail, b.tail) {
		t.Fatal("tail state differs between two runs")
	}
	r := req()
	r.Seed = 8
	if c := run(t, open(t, "ref"), r); c.sums[5] == a.sums[5] {
		t.Fatal("the seed does not reach the frames")
	}
}

// TestChainIsSeamless: segment 2, conditioned on segment 1's tail, starts
// with exactly segment 1's last overlap frames.
func TestChainIsSeamless(t *testing.T) {
	e := open(t, "ref")
	const frames, overlap = 17, 5
	r1 := req()
	r1.Frames, r1.TailFrames = frames, overlap
	s1 := run(t, e, r1)
	r2 := req()
	r2.Seed, r2.FirstFrame, r2.Overlap, r2.Cond, r2.TailFrames = 99, frames-overlap, overlap, s1.tail, overlap
	s2 := run(t, e, r2)
	for i := 0; i < overlap; i++ {
		if !bytes.Equal(s2.frames[i], s1.frames[frames-overlap+i]) {
			t.Fatalf("segment 2 frame %d differs from segment 1 frame %d", i, frames-overlap+i)
		}
	}
	if bytes.Equal(s2.frames[overlap], s2.frames[overlap-1]) {
		t.Fatal("the first new frame repeats the last conditioning frame: nothing moves")
	}
}

func meanColour(f []byte) [3]float64 {
	var m [3]float64
	for i := 0; i < len(f); i += 3 {
		for c := 0; c < 3; c++ {
			m[c] += float64(f[i+c])
		}
	}
	for c := range m {
		m[c] /= float64(len(f) / 3)
	}
	return m
}

func TestPromptsLookDifferentAndFramesMove(t *testing.T) {
	e := open(t, "ref")
	a := run(t, e, req())
	r := req()
	r.Prompt = "a blue whale under the arctic ice"
	b := run(t, e, r)
	ma, mb := meanColour(a.frames[8]), meanColour(b.frames[8])
	diff := 0.0
	for c := range ma {
		diff += (ma[c] - mb[c]) * (ma[c] - mb[c])
	}
	if diff < 25 { // 5 levels of 255 across channels at least
		t.Fatalf("prompts look alike: mean colours %v and %v", ma, mb)
	}
	changed := 0
	for i := range a.frames[0] {
		if a.frames[0][i] != a.frames[16][i] {
			changed++
		}
	}
	if changed < len(a.frames[0])/20 {
		t.Fatalf("only %d of %d bytes change over 16 frames", changed, len(a.frames[0]))
	}
}

func TestRequestValidation(t *testing.T) {
	e := open(t, "ref")
	good := req()
	s1 := run(t, e, good)
	cases := map[string]func(*infer.Request){
		"odd width":         func(r *infer.Request) { r.Width = 127 },
		"too wide":          func(r *infer.Request) { r.Width = 2000 },
		"too small":         func(r *infer.Request) { r.Height = 8 },
		"no frames":         func(r *infer.Request) { r.Frames = 0 },
		"overlap ≥ frames":  func(r *infer.Request) { r.Overlap = 17 },
		"no steps":          func(r *infer.Request) { r.Steps = 0 },
		"empty prompt":      func(r *infer.Request) { r.Prompt = "" },
		"huge prompt":       func(r *infer.Request) { r.Prompt = strings.Repeat("x", 9000) },
		"bad utf-8":         func(r *infer.Request) { r.Prompt = "\xff\xfe" },
		"guidance":          func(r *infer.Request) { r.Guidance = 99 },
		"tail > frames":     func(r *infer.Request) { r.TailFrames = 18 },
		"cond without O":    func(r *infer.Request) { r.Cond = s1.tail },
		"corrupt cond":      func(r *infer.Request) { r.Overlap = 5; r.FirstFrame = 12; r.Cond = flip(s1.tail, 100) },
		"truncated cond":    func(r *infer.Request) { r.Overlap = 5; r.FirstFrame = 12; r.Cond = s1.tail[:len(s1.tail)-4] },
		"cond wrong frame":  func(r *infer.Request) { r.Overlap = 5; r.FirstFrame = 11; r.Cond = s1.tail },
		"cond wrong size":   func(r *infer.Request) { r.Overlap = 5; r.FirstFrame = 12; r.Width = 256; r.Cond = s1.tail },
		"cond wrong count":  func(r *infer.Request) { r.Overlap = 4; r.FirstFrame = 12; r.Cond = s1.tail },
		"negative frames":   func(r *infer.Request) { r.Frames = -1 },
		"NUL in the prompt": func(r *infer.Request) { r.Prompt = "a\x00b" },
		"fps over 240":      func(r *infer.Request) { r.FPS = 241 },
	}
	for name, mut := range cases {
		r := good
		mut(&r)
		err := e.Run(context.Background(), r, newCollect())
		if !errors.Is(err, infer.ErrInvalidRequest) {
			t.Errorf("%s: got %v, want ErrInvalidRequest", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func TestCancelAndAbort(t *testing.T) {
	e := open(t, "sim", infer.WithParams("step_ms=50"))
	ctx, cancel := context.WithCancel(context.Background())
	r := req()
	r.Steps = 200
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := e.Run(ctx, r, newCollect())
	if !errors.Is(err, infer.ErrCancelled) || !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("cancel: %v after %v", err, time.Since(start))
	}
	c := newCollect()
	c.failAt = 3
	err = open(t, "ref").Run(context.Background(), req(), c)
	if !errors.Is(err, infer.ErrAborted) || !strings.Contains(err.Error(), "disk full") || len(c.frames) != 3 {
		t.Fatalf("abort: %v, %d frames", err, len(c.frames))
	}
}

// stepSink reports each denoise step on a channel.
type stepSink struct{ steps chan int }

func (s stepSink) Step(step, _ int) error { s.steps <- step; return nil }
func (stepSink) Tail([]byte) error        { return nil }
func (stepSink) Frame(infer.Frame) error  { return nil }

// TestSimHangEndsOnlyByCancel: sim's hang_at_step reports the steps before
// it and then nothing, and the run does not end by itself; cancelling ctx
// ends it with ErrCancelled, and the engine runs the next request.
func TestSimHangEndsOnlyByCancel(t *testing.T) {
	e := open(t, "sim", infer.WithParams("step_ms=0;hang_at_step=3"))
	ctx, cancel := context.WithCancel(context.Background())
	sink := stepSink{steps: make(chan int, 16)}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, req(), sink) }()
	for want := 1; want <= 2; want++ {
		if got := <-sink.steps; got != want {
			t.Fatalf("step %d reported, want %d", got, want)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the hung run returned by itself: %v", err)
	case step := <-sink.steps:
		t.Fatalf("the hung step reported progress: step %d", step)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, infer.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled hang: %v", err)
	}
	r := req()
	r.Steps = 2
	if c := run(t, e, r); len(c.frames) != r.Frames {
		t.Fatalf("after the hang: %d frames", len(c.frames))
	}
}

func TestMissingPluginAndBadOptions(t *testing.T) {
	_, err := infer.Open("cuda", infer.WithPluginDir(t.TempDir()))
	if !errors.Is(err, infer.ErrBackendNotFound) || !strings.Contains(err.Error(), "libspool_infer_cuda.so") ||
		!strings.Contains(err.Error(), "make -C libs/infer cuda") {
		t.Fatalf("missing plugin: %v", err)
	}
	if _, err := infer.Open("no/such"); !errors.Is(err, infer.ErrBackendNotFound) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := infer.Open("sim", infer.WithParams("step_ms=fast")); !errors.Is(err, infer.ErrInvalidRequest) {
		t.Fatalf("bad param: %v", err)
	}
	if _, err := infer.Open("ref", infer.WithDevice(0)); !errors.Is(err, infer.ErrInvalidRequest) {
		t.Fatalf("ref on a GPU: %v", err)
	}
	e := open(t, "ref")
	_ = e.Close()
	if err := e.Run(context.Background(), req(), newCollect()); !errors.Is(err, infer.ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}
}

func TestSimIsCheapAndShaped(t *testing.T) {
	e := open(t, "sim")
	c := run(t, e, req())
	if len(c.frames) != 17 || len(c.tail) != 40+5*16*9*16*4 || e.Info().ModelVersion == "" {
		t.Fatalf("sim: %d frames, tail %d bytes", len(c.frames), len(c.tail))
	}
}

// FuzzRequest: no request crashes the engine; invalid ones are errors.
func FuzzRequest(f *testing.F) {
	e, err := infer.Open("ref")
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	good := newCollect()
	if err := e.Run(context.Background(), infer.Request{Prompt: "p", Seed: 1, Width: 32, Height: 32, Frames: 4, Steps: 1, TailFrames: 2}, good); err != nil {
		f.Fatal(err)
	}
	corrupt := bytes.Clone(good.tail)
	corrupt[len(corrupt)/2] ^= 1
	media := bytes.Join(good.frames[2:], nil) // 2 frames of 32x32
	none := []byte(nil)
	f.Add("p", 32, 32, 4, 2, 1, float32(1), int64(2), good.tail, none, 2)        // valid chain segment
	f.Add("p", 32, 32, 4, 2, 1, float32(1), int64(2), corrupt, none, 2)          // corrupt tail blob
	f.Add("p", 32, 32, 4, 2, 1, float32(1), int64(2), good.tail[:60], none, 2)   // truncated tail blob
	f.Add("p", 32, 32, 2, 2, 1, float32(1), int64(0), none, none, 0)             // frames ≤ overlap
	f.Add("", 33, 32, 4, 5, 1, float32(1), int64(0), []byte("SPTS"), none, 0)    // odd width, empty prompt
	f.Add("\xff\xfe", 32, 32, 4, 0, 1, float32(1), int64(0), none, none, 0)      // invalid UTF-8
	f.Add("p", 32, 32, 4, 2, 1, float32(1), int64(-2), none, media, 2)           // valid extension
	f.Add("p", 32, 32, 4, 1, 1, float32(1), int64(0), none, media[:32*32*3], 1)  // valid image to video
	f.Add("p", 32, 32, 4, 2, 1, float32(1), int64(-2), good.tail, media, 2)      // prefix and cond
	f.Add("p", 32, 32, 4, 2, 1, float32(1), int64(0), none, media[1:], 2)        // prefix a byte short
	f.Add("p", 32, 32, 4, 2, 1, float32(1), int64(-3), none, media, 2)           // before -overlap
	f.Add("p", 32, 32, 4, 2, 1, float32(1), int64(-1)<<63, none, none, 2)        // negative without media
	f.Add("p", 32, 32, 4, 0, 1, float32(1), int64(math.MaxInt64), none, none, 0) // last frame overflows
	f.Add(strings.Repeat("é", 5000), 4000, 2, 0, 0, 0, float32(-1), int64(-1)<<62, []byte{}, []byte{}, 9)
	f.Add(strings.Repeat("x", 9000), 1920, 1080, 1025, 0, 1001, float32(51), int64(0), none, none, 0)
	f.Fuzz(func(t *testing.T, prompt string, w, h, frames, overlap, steps int, g float32, first int64, cond, prefix []byte, tail int) {
		// Invalid requests are rejected before any work; bound the work of
		// the ones that would pass the size checks. The point is validation.
		sizeOK := w%2 == 0 && h%2 == 0 && min(w, h) >= 16 && max(w, h) <= 1920 && min(w, h) <= 1080
		if sizeOK && frames > 0 && steps > 0 && float64(w)*float64(h)*float64(frames)*float64(steps) > 64*64*8*2 {
			return
		}
		r := infer.Request{Prompt: prompt, Width: w, Height: h, Frames: frames, Overlap: overlap, Steps: steps,
			Guidance: g, FirstFrame: first, Cond: cond, Prefix: prefix, TailFrames: tail}
		err := e.Run(context.Background(), r, newCollect())
		if err != nil && !errors.Is(err, infer.ErrInvalidRequest) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

func TestPresetsRunAtFullSize(t *testing.T) {
	e := open(t, "sim")
	for _, name := range []string{"540p", "720p", "1080p"} {
		p, err := infer.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		r := infer.Request{Prompt: "x", Width: p.Width, Height: p.Height, Frames: 2, Steps: 1}
		c := run(t, e, r)
		if len(c.frames[0]) != p.Width*p.Height*3 {
			t.Fatalf("%s: frame of %d bytes", name, len(c.frames[0]))
		}
	}
	portrait := infer.Request{Prompt: "x", Width: 1080, Height: 1920, Frames: 2, Steps: 1}
	run(t, open(t, "ref"), portrait)
	if _, err := infer.Preset("4k"); !errors.Is(err, infer.ErrInvalidRequest) {
		t.Fatal("unknown preset accepted")
	}
}

// TestThreadsAreBitIdentical: WithThreads changes the speed, never a byte,
// for a chained pair of segments.
func TestThreadsAreBitIdentical(t *testing.T) {
	chain := func(threads int) (*collect, *collect) {
		e := open(t, "ref", infer.WithThreads(threads))
		r1 := req()
		r1.Width, r1.Height = 200, 120
		s1 := run(t, e, r1)
		r2 := r1
		r2.Seed, r2.FirstFrame, r2.Overlap, r2.Cond = 3, 12, 5, s1.tail
		return s1, run(t, e, r2)
	}
	a1, a2 := chain(1)
	b1, b2 := chain(2)
	for i := range a1.sums {
		if a1.sums[i] != b1.sums[i] || a2.sums[i] != b2.sums[i] {
			t.Fatalf("frame %d differs between 1 and 2 threads", i)
		}
	}
	if !bytes.Equal(a2.tail, b2.tail) {
		t.Fatal("tails differ between 1 and 2 threads")
	}
}

// TestIndependentMode: overlap without a tail state generates every frame
// afresh (the stitcher crossfades the overlap).
func TestIndependentMode(t *testing.T) {
	r := req()
	r.Overlap, r.FirstFrame = 5, 12
	if c := run(t, open(t, "ref"), r); len(c.frames) != r.Frames {
		t.Fatalf("%d frames", len(c.frames))
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := map[string]infer.Option{
		"threads 0":          infer.WithThreads(0),
		"threads too many":   infer.WithThreads(infer.MaxThreads + 1),
		"device -2":          infer.WithDevice(-2),
		"params without =":   infer.WithParams("step_ms"),
		"params empty key":   infer.WithParams("=3"),
		"params twice":       infer.WithParams("a=1;a=2"),
		"params NUL":         infer.WithParams("a=\x00"),
		"map key with =":     infer.WithParamMap(map[string]string{"a=b": "1"}),
		"map value with ;":   infer.WithParamMap(map[string]string{"a": "1;b=2"}),
		"model NUL":          infer.WithModel("m\x00"),
		"plugin dir NUL":     infer.WithPluginDir("/x\x00"),
		"weights dir NUL":    infer.WithWeightsDir("/w\x00"),
		"sim step_ms":        infer.WithParamMap(map[string]string{"step_ms": "fast"}),
		"sim step_ms < 0":    infer.WithParams("step_ms=-1"),
		"sim frame_us junk":  infer.WithParams(";frame_us=1x;"),
		"sim hang_at_step 0": infer.WithParams("hang_at_step=0"),
		"sim hang alone":     infer.WithParams("hang_ignores_cancel=1"),
	}
	for name, opt := range cases {
		if _, err := infer.Open("sim", opt); !errors.Is(err, infer.ErrInvalidRequest) {
			t.Errorf("%s: got %v, want ErrInvalidRequest", name, err)
		}
	}
	if _, err := infer.Open(""); !errors.Is(err, infer.ErrInvalidRequest) {
		t.Errorf("empty backend: %v", err)
	}
	e := open(t, "sim", infer.WithParams("step_ms=0;;frame_us=0"), infer.WithParamMap(map[string]string{"x": "y"}),
		infer.WithThreads(2))
	if err := e.Close(); err != nil || e.Close() != nil {
		t.Fatal("Close is not idempotent")
	}
}
