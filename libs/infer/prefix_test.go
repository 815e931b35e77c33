package infer_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/infer"
)

// meanAbs is the mean absolute difference of two byte slices, in levels of
// 255, and the largest one.
func meanAbs(a, b []byte) (float64, int) {
	sum, worst := 0, 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		worst = max(worst, d)
	}
	return float64(sum) / float64(len(a)), worst
}

// lastFrames is the RGB24 of c's last n frames, back to back: a prefix.
func lastFrames(c *collect, n int) []byte {
	return bytes.Join(c.frames[len(c.frames)-n:], nil)
}

// prefixReq is req() extended from prefix (overlap frames), as an
// extension's first segment: its prefix frames come before frame 0.
func prefixReq(w, h, overlap int, prefix []byte) infer.Request {
	r := req()
	r.Width, r.Height, r.Seed = w, h, 41
	r.Overlap, r.FirstFrame, r.Prefix = overlap, -int64(overlap), prefix
	return r
}

// TestPrefixRoundTrip: ref's encoder is the inverse of its decoder as near
// as it goes, so a segment's prefix frames come out close to the frames
// given. Measured on ref's own decoded frames (smooth, and within the tone
// curve's range): mean absolute error 1.07 levels of 255 at 128x72 (a
// 16x9 latent grid, where the scene varies within a cell and the box
// average smooths it), 0.48 at 200x120 and 0.15 at 330x250; at most 18
// levels anywhere at 128x72. The bounds leave some room.
func TestPrefixRoundTrip(t *testing.T) {
	e := open(t, "ref")
	for _, tc := range []struct {
		w, h, overlap int
		mean          float64
		worst         int
	}{
		{128, 72, 5, 1.5, 24},
		{128, 72, 1, 1.5, 24},
		{200, 120, 5, 0.7, 10},
		{330, 250, 3, 0.25, 5},
		{64, 200, 2, 1.2, 20},
	} {
		r := req()
		r.Width, r.Height = tc.w, tc.h
		src := run(t, e, r)
		prefix := lastFrames(src, tc.overlap)
		c := run(t, e, prefixReq(tc.w, tc.h, tc.overlap, prefix))
		if len(c.frames) != r.Frames {
			t.Fatalf("%dx%d: %d frames, want %d", tc.w, tc.h, len(c.frames), r.Frames)
		}
		mean, worst := meanAbs(bytes.Join(c.frames[:tc.overlap], nil), prefix)
		t.Logf("%dx%d, %d prefix frames: decode(encode(x)) is %.3f levels from x on average, %d at most", tc.w, tc.h,
			tc.overlap, mean, worst)
		if mean > tc.mean || worst > tc.worst {
			t.Errorf("%dx%d, %d prefix frames: mean error %.3f (bound %.2f), worst %d (bound %d)", tc.w, tc.h,
				tc.overlap, mean, tc.mean, worst, tc.worst)
		}
	}
}

// TestPrefixOfASmoothImage: a picture that ref never made (two gradients
// within the tone curve's range) comes back close too.
func TestPrefixOfASmoothImage(t *testing.T) {
	const w, h = 160, 96
	img := make([]byte, w*h*3)
	for y := range h {
		for x := range w {
			p := img[(y*w+x)*3:]
			p[0], p[1], p[2] = byte(50+140*x/w), byte(60+120*y/h), 128
		}
	}
	r := prefixReq(w, h, 1, img)
	r.FirstFrame = 0 // image to video: the image is frame 0
	c := run(t, open(t, "ref"), r)
	mean, worst := meanAbs(c.frames[0], img)
	t.Logf("a smooth image: decode(encode(x)) is %.3f levels from x on average, %d at most", mean, worst)
	if mean > 1 || worst > 4 {
		t.Fatalf("a smooth image comes back %.3f levels off on average (bound 1), %d at most (bound 4)", mean, worst)
	}
}

// TestPrefixImageAndVideo: image to video (1 prefix frame) and an
// extension (Overlap frames): every frame comes out, the run is
// deterministic, the new frames continue from the prefix (the first new
// frame is about as close to the last prefix frame as consecutive frames
// are; a cut to the prompt's own scene would be far) and then move.
func TestPrefixImageAndVideo(t *testing.T) {
	e := open(t, "ref")
	other := req()
	other.Prompt = "a blue whale under the arctic ice"
	src := run(t, e, other) // the media: another scene altogether
	for _, overlap := range []int{1, 5} {
		r := prefixReq(128, 72, overlap, lastFrames(src, overlap))
		a, b := run(t, e, r), run(t, e, r)
		if len(a.frames) != r.Frames || len(a.tail) == 0 {
			t.Fatalf("overlap %d: %d frames, tail of %d bytes", overlap, len(a.frames), len(a.tail))
		}
		for i := range a.sums {
			if a.sums[i] != b.sums[i] {
				t.Fatalf("overlap %d: frame %d differs between two runs", overlap, i)
			}
		}
		fresh := req() // the prompt's scene alone, without the prefix
		fresh.Seed = r.Seed
		cut := run(t, e, fresh)
		step, _ := meanAbs(a.frames[overlap], a.frames[overlap-1])
		jump, _ := meanAbs(cut.frames[overlap], a.frames[overlap-1])
		if jump < 15 || step > jump/5 {
			t.Errorf("overlap %d: the first new frame moves %.2f levels from the prefix; a cut would be %.2f", overlap,
				step, jump)
		}
		if moved, _ := meanAbs(a.frames[r.Frames-1], a.frames[overlap]); moved < 2 {
			t.Errorf("overlap %d: the new frames hardly move (%.2f levels)", overlap, moved)
		}
	}
}

// TestExtensionCrossesFrameZeroSmoothly: an extension's prefix frames are
// frames -Overlap..-1 of the video; the scene's clock runs on through 0, so
// the first new frame (frame 0) is as close to the last prefix frame as any
// two consecutive frames of a segment are.
func TestExtensionCrossesFrameZeroSmoothly(t *testing.T) {
	e := open(t, "ref")
	r := req()
	r.FirstFrame = 20 // frames 20..36: the prefix is 32..36, standing in for frames -5..-1
	src := run(t, e, r)
	c := run(t, e, prefixReq(128, 72, 5, lastFrames(src, 5)))
	var typical float64
	for i := 6; i < len(c.frames); i++ {
		d, _ := meanAbs(c.frames[i], c.frames[i-1])
		typical = max(typical, d)
	}
	if step, _ := meanAbs(c.frames[5], c.frames[4]); step > 2*typical+0.5 {
		t.Fatalf("frame 0 moves %.2f levels from frame -1; consecutive new frames at most %.2f", step, typical)
	}
}

// TestPrefixThreadsAreBitIdentical: the encoder's bytes do not depend on
// the thread count.
func TestPrefixThreadsAreBitIdentical(t *testing.T) {
	src := run(t, open(t, "ref"), req())
	var want *collect
	for _, threads := range []int{1, 2, 3, 5} {
		r := prefixReq(200, 120, 5, nil)
		r.Prefix = make([]byte, 5*200*120*3)
		for i := range r.Prefix { // 200x120 frames from the 128x72 ones, any bytes will do
			r.Prefix[i] = src.frames[i%5][i%len(src.frames[0])]
		}
		got := run(t, open(t, "ref", infer.WithThreads(threads)), r)
		if want == nil {
			want = got
			continue
		}
		for i := range want.sums {
			if got.sums[i] != want.sums[i] {
				t.Fatalf("%d threads: frame %d differs from 1 thread's", threads, i)
			}
		}
		if !bytes.Equal(got.tail, want.tail) {
			t.Fatalf("%d threads: the tail differs from 1 thread's", threads)
		}
	}
}

// TestPrefixRefusals: a prefix of the wrong size, with a tail state too, or
// without overlap, and a negative FirstFrame without a prefix (or before
// -Overlap) are refused before any work, naming the field.
func TestPrefixRefusals(t *testing.T) {
	e := open(t, "ref")
	src := run(t, e, req())
	frame := len(src.frames[0])
	good := prefixReq(128, 72, 2, lastFrames(src, 2))
	run(t, e, good)
	cases := map[string]struct {
		mut  func(*infer.Request)
		want string
	}{
		"a byte short":       {func(r *infer.Request) { r.Prefix = r.Prefix[:2*frame-1] }, "prefix: 55295 bytes, want"},
		"a frame too many":   {func(r *infer.Request) { r.Prefix = lastFrames(src, 3) }, "prefix: 82944 bytes"},
		"another size":       {func(r *infer.Request) { r.Width = 64 }, "prefix: 55296 bytes, want"},
		"and a tail state":   {func(r *infer.Request) { r.Cond = src.tail }, "cond and prefix"},
		"without overlap":    {func(r *infer.Request) { r.Overlap, r.FirstFrame = 0, 0 }, "prefix: frames were given but overlap is 0"},
		"before -overlap":    {func(r *infer.Request) { r.FirstFrame = -3 }, "first_frame -3"},
		"negative, no media": {func(r *infer.Request) { r.Prefix = nil }, "first_frame -2: negative only"},
	}
	for name, tc := range cases {
		r := good
		tc.mut(&r)
		c := newCollect()
		err := e.Run(context.Background(), r, c)
		if !errors.Is(err, infer.ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrInvalidRequest naming %q", name, err, tc.want)
		}
		if c.steps != 0 || len(c.frames) != 0 {
			t.Errorf("%s: the engine worked before refusing", name)
		}
	}
}
