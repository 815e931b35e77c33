package infer_test

import (
	"crypto/sha256"
	"math"
	"slices"
	"testing"

	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/plan"
)

// video is a chain rendered through the binding: the kept frames in video
// order, and the video indices where a segment with a new prompt begins.
type video struct {
	frames   [][]byte
	switches []int64
}

// renderChain renders every segment of spec on e, each conditioned on the
// previous one's tail, and keeps each segment's new frames.
func renderChain(t *testing.T, e *infer.Engine, spec plan.Spec, w, h, steps int) video {
	t.Helper()
	p, err := plan.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := p.All()
	if err != nil {
		t.Fatal(err)
	}
	var v video
	var tail []byte
	for i, s := range segs {
		r := infer.Request{Prompt: s.Prompt, Seed: s.Seed, Width: w, Height: h, Frames: s.Frames, Overlap: s.Overlap,
			Steps: steps, Guidance: 6, FirstFrame: s.FirstFrame, Cond: tail, TailFrames: p.Spec().Overlap}
		c := run(t, e, r)
		if i > 0 {
			// The conditioning frames are the previous segment's, exactly.
			for k := 0; k < s.Overlap; k++ {
				if got, want := c.sums[k], sha256.Sum256(v.frames[int(s.FirstFrame)+k]); got != want {
					t.Fatalf("segment %d frame %d differs from its conditioning", i, k)
				}
			}
			if s.Prompt != segs[i-1].Prompt {
				v.switches = append(v.switches, s.NewStart())
			}
		}
		v.frames = append(v.frames, c.frames[s.Overlap:s.Frames-s.Trim]...)
		tail = c.tail
	}
	return v
}

// change is the mean absolute difference of two RGB24 frames, in grey
// levels over every byte.
func change(a, b []byte) float64 {
	var d int64
	for i := range a {
		x := int64(a[i]) - int64(b[i])
		if x < 0 {
			x = -x
		}
		d += x
	}
	return float64(d) / float64(len(a))
}

// TestPromptSwitchIsGradual: in a chain with a three-cue timeline, the video
// moves from one prompt's scene to the next over the switching segment, the
// way a diffusion-forcing model continues from its clean prefix: the largest
// frame-to-frame change anywhere from a switch through the segment it
// starts stays within a small multiple of the median change of the whole
// video (chain seams included), where a hard cut is tens of times it.
func TestPromptSwitchIsGradual(t *testing.T) {
	const fps, maxRatio = 24, 3.0
	cases := []struct {
		name            string
		window, overlap int
		seconds         int
		cues            []float64
	}{
		{"720p windows", 121, 37, 15, []float64{0, 5, 10}},
		{"540p windows", 97, 17, 12, []float64{0, 4.5, 8}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prompts := []string{"a lighthouse on a cliff at dusk, waves below",
				"the lighthouse beam sweeping over a stormy sea at night", "dawn over a calm sea, the lighthouse in soft light"}
			tl, err := plan.FromSeconds(fps, c.cues, prompts)
			if err != nil {
				t.Fatal(err)
			}
			spec := plan.Spec{TotalFrames: int64(c.seconds * fps), Window: c.window, Overlap: c.overlap, Seed: 2026, Timeline: tl}
			v := renderChain(t, open(t, "ref"), spec, 160, 96, 30)
			if len(v.switches) != 2 {
				t.Fatalf("%d prompt switches, want 2", len(v.switches))
			}
			diffs := make([]float64, len(v.frames))
			for i := 1; i < len(v.frames); i++ {
				diffs[i] = change(v.frames[i-1], v.frames[i])
			}
			sorted := slices.Clone(diffs[1:])
			slices.Sort(sorted)
			median := sorted[len(sorted)/2]
			stride := int64(c.window - c.overlap)
			// Chain seams stay as smooth as the rest.
			for f := int64(c.window); f < int64(len(v.frames)); f += stride {
				if diffs[f] > maxRatio*median {
					t.Errorf("seam at frame %d: a change of %.2f is %.1f× the median %.2f", f, diffs[f], diffs[f]/median, median)
				}
			}
			for _, at := range v.switches {
				worst, where := 0.0, int64(0)
				for f := at; f < min(at+stride, int64(len(v.frames))); f++ {
					if diffs[f] > worst {
						worst, where = diffs[f], f
					}
				}
				t.Logf("switch at frame %d: largest change %.2f at frame %d, %.1f× the median %.2f", at, worst, where, worst/median, median)
				if worst > maxRatio*median {
					t.Errorf("switch at frame %d: a change of %.2f grey levels at frame %d is %.1f× the median %.2f (at most %.0f×)",
						at, worst, where, worst/median, median, maxRatio)
				}
			}
			// The new prompt does take over: by the end of the switching
			// segment the picture is far from where it started.
			for _, at := range v.switches {
				end := min(at+stride, int64(len(v.frames))) - 1
				if d := change(v.frames[at-1], v.frames[end]); d < 10*median || math.IsNaN(d) {
					t.Errorf("switch at frame %d: the segment ends %.2f grey levels from its conditioning: the new prompt does not show", at, d)
				}
			}
		})
	}
}
