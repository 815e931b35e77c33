package plan_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/plan"
)

// randomSpec draws a valid bounded spec; about a third ask for alignment.
func randomSpec(r *rand.Rand) plan.Spec {
	w := 1 + r.IntN(200)
	spec := plan.Spec{
		Window:      w,
		Overlap:     r.IntN(w),
		Mode:        plan.Mode(r.IntN(2)),
		Seed:        r.Uint64(),
		TotalFrames: 1 + r.Int64N(5000),
	}
	if r.IntN(3) == 0 {
		spec.Align = 4
		if spec.Window < 5 {
			spec.Window = 5 + r.IntN(100)
		}
		aligned := spec.Window - (spec.Window-1)%4
		if spec.Overlap > aligned-4 {
			spec.Overlap = r.IntN(aligned - 3)
		}
	}
	if r.IntN(4) == 0 {
		spec.Start = r.Int64N(300)
	}
	if spec.Mode == plan.Chain && spec.Overlap > 0 && r.IntN(3) == 0 {
		spec.Extend = true
	}
	cues := 1 + r.IntN(4)
	spec.Timeline = plan.Timeline{{FromFrame: 0, Prompt: "p0"}}
	at := int64(0)
	for i := 1; i < cues; i++ {
		at += 1 + r.Int64N(1+spec.TotalFrames/int64(cues))
		spec.Timeline = append(spec.Timeline, plan.Cue{FromFrame: at, Prompt: fmt.Sprintf("p%d", i)})
	}
	return spec
}

// nearestBoundary enumerates the segment boundaries (0, W, W+S, … with
// S = W−O; 0, W−O, … for an extension) and returns the one nearest to
// frame f, the later of two at the same distance: an oracle for the
// planner's arithmetic.
func nearestBoundary(f int64, w, o int, extend bool) int64 {
	first := int64(w)
	if extend {
		first -= int64(o)
	}
	best := int64(0)
	for b := int64(0); ; {
		if d, bd := abs(b-f), abs(best-f); d < bd || (d == bd && b > best) {
			best = b
		}
		if b > f {
			return best
		}
		switch stride := int64(w - o); {
		case b == 0:
			b = first
		case b+64*stride < f: // far below f: skip boundaries in bulk
			b += 63 * stride
		default:
			b += stride
		}
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// checkLandings checks the cue invariants of a plan: every cue lands on a
// segment boundary (the first new frame of its Segment) within ⌈(W−O)/2⌉
// frames of its request, the nearest one; cues keep their order; and a
// segment's prompt is that of the cue landed at or before its first new
// frame.
func checkLandings(t *testing.T, spec plan.Spec, p *plan.Plan, segs []plan.Segment) {
	t.Helper()
	norm := p.Spec()
	maxErr := int64(norm.Window-norm.Overlap+1) / 2
	ls := p.Landings()
	if len(ls) != len(spec.Timeline) {
		t.Fatalf("spec %+v: %d landings for %d cues", norm, len(ls), len(spec.Timeline))
	}
	for i, l := range ls {
		ctx := fmt.Sprintf("spec %+v landing %+v", norm, l)
		c := spec.Timeline[i]
		if l.Cue != i || l.Requested != c.FromFrame || l.Prompt != c.Prompt {
			t.Fatalf("%s: not cue %d %+v", ctx, i, c)
		}
		if abs(l.Landed-l.Requested) > maxErr {
			t.Fatalf("%s: lands %d frames from its request, more than %d", ctx, abs(l.Landed-l.Requested), maxErr)
		}
		if want := nearestBoundary(c.FromFrame, norm.Window, norm.Overlap, norm.Extend); l.Landed != want {
			t.Fatalf("%s: lands at %d, the nearest boundary is %d", ctx, l.Landed, want)
		}
		if l.Segment >= int64(len(segs)) || segs[l.Segment].NewStart()-norm.Start != l.Landed {
			t.Fatalf("%s: not the first new frame of segment %d", ctx, l.Segment)
		}
		if i == 0 && l.Landed != 0 || i > 0 && l.Landed <= ls[i-1].Landed {
			t.Fatalf("%s: cues out of order", ctx)
		}
	}
	for _, s := range segs {
		want := ""
		for _, l := range ls {
			if l.Landed <= s.NewStart()-norm.Start {
				want = l.Prompt
			}
		}
		if s.Prompt != want {
			t.Fatalf("spec %+v segment %+v: prompt %q, want %q, the cue landed at or before frame %d", norm, s, s.Prompt, want, s.NewStart())
		}
	}
}

// checkRefusal checks that a *CueError is right: the cue's nearest boundary
// is too far, past the end, or taken by the cue before it, and every cue
// before it lands.
func checkRefusal(t *testing.T, spec plan.Spec, err error) {
	t.Helper()
	var ce *plan.CueError
	if !errors.As(err, &ce) || !errors.Is(err, plan.ErrInvalidSpec) {
		t.Fatalf("spec %+v: %v is not a cue error", spec, err)
	}
	w, o := spec.Window, spec.Overlap
	if a := spec.Align; a > 1 {
		w = w - (w-1)%a
		if o > 0 {
			o += (a - (o-1)%a) % a
		}
	}
	maxErr := int64(w-o+1) / 2
	prev := int64(-1)
	for i, c := range spec.Timeline[:ce.Cue+1] {
		at := nearestBoundary(c.FromFrame, w, o, spec.Extend)
		ok := abs(at-c.FromFrame) <= maxErr && (spec.Live || at < spec.TotalFrames) && at != prev
		if i < ce.Cue && !ok {
			t.Fatalf("spec %+v: %v, but cue %d cannot land either", spec, err, i)
		}
		if i == ce.Cue {
			if ok || at != ce.Nearest || ce.MaxError != maxErr {
				t.Fatalf("spec %+v: refused with %v (%+v), but the cue lands at %d", spec, err, ce, at)
			}
			if ce.Reason == plan.ReasonShared && (ce.Other != i-1 || at != prev) {
				t.Fatalf("spec %+v: %v", spec, err)
			}
		}
		prev = at
	}
}

// TestPlanInvariants checks every invariant of DESIGN §5 over random specs.
func TestPlanInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	refused, travelled := 0, 0
	for n := 0; n < 5000; n++ {
		spec := randomSpec(r)
		p, err := plan.New(spec)
		if err != nil {
			checkRefusal(t, spec, err)
			refused++
			continue
		}
		norm := p.Spec()
		segs, err := p.All()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(segs)) != p.Count() {
			t.Fatalf("All gave %d segments, Count %d", len(segs), p.Count())
		}
		next := norm.Start
		for i, s := range segs {
			ctx := fmt.Sprintf("spec %+v segment %+v", norm, s)
			// The new-frame ranges tile [Start, Start+total) with no gap and
			// no overlap.
			if s.NewStart() != next {
				t.Fatalf("%s: new frames start at %d, want %d", ctx, s.NewStart(), next)
			}
			if s.NewFrames() < 1 {
				t.Fatalf("%s: adds no frame", ctx)
			}
			next = s.NewEnd()
			// O < frames ≤ W, and only segment 0 has no overlap, unless it
			// extends a video: then its overlap is the input's last O frames,
			// just before Start.
			if s.Frames <= s.Overlap || s.Frames > norm.Window {
				t.Fatalf("%s: frames outside (overlap, window]", ctx)
			}
			if i == 0 && !norm.Extend && s.Overlap != 0 {
				t.Fatalf("%s: the first segment has overlap", ctx)
			}
			if i == 0 && norm.Extend && (s.Overlap != norm.Overlap || s.FirstFrame != norm.Start-int64(norm.Overlap)) {
				t.Fatalf("%s: an extension's first segment must begin with the input's last %d frames", ctx, norm.Overlap)
			}
			if i > 0 && s.Overlap != norm.Overlap {
				t.Fatalf("%s: overlap %d, want %d", ctx, s.Overlap, norm.Overlap)
			}
			// Only the last segment may be shorter than the window.
			if i < len(segs)-1 && (s.Frames != norm.Window || s.Trim != 0) {
				t.Fatalf("%s: a segment before the last is short", ctx)
			}
			// Alignment: frame counts ≡ 1 mod Align, trim only when aligning.
			if norm.Align > 1 {
				if (s.Frames-1)%norm.Align != 0 || (s.Overlap > 0 && (s.Overlap-1)%norm.Align != 0) {
					t.Fatalf("%s: not aligned to %d", ctx, norm.Align)
				}
				if s.Trim < 0 || s.Trim >= norm.Align {
					t.Fatalf("%s: trim %d out of [0, %d)", ctx, s.Trim, norm.Align)
				}
			} else if s.Trim != 0 {
				t.Fatalf("%s: trim without alignment", ctx)
			}
			// Overlap frames are the previous segment's last kept frames.
			if i > 0 && s.FirstFrame != segs[i-1].NewEnd()-int64(s.Overlap) {
				t.Fatalf("%s: overlap does not end where the previous segment does", ctx)
			}
			// The seed is a pure function of (job seed, index).
			if s.Seed != plan.SegmentSeed(spec.Seed, s.Index) {
				t.Fatalf("%s: seed is not SegmentSeed", ctx)
			}
		}
		if next != spec.Start+spec.TotalFrames {
			t.Fatalf("spec %+v: new frames end at %d, want %d", norm, next, spec.Start+spec.TotalFrames)
		}
		// The prompts follow the timeline, each cue landed on a boundary.
		checkLandings(t, spec, p, segs)
		if len(spec.Timeline) > 1 {
			travelled++
		}
	}
	t.Logf("of 5000 random specs, %d refused and %d with several cues planned", refused, travelled)
	if refused > 2500 || travelled < 1000 {
		t.Fatalf("%d of 5000 random timelines refused: the property barely ran", refused)
	}
}

// TestLiveMatchesBounded: a live plan's segments are those of any bounded
// plan long enough to contain them, so lazy planning never changes the past.
func TestLiveMatchesBounded(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 500; n++ {
		spec := randomSpec(r)
		spec.Align = 0
		live := spec
		live.Live, live.TotalFrames = true, 0
		lp, err := plan.New(live)
		if err != nil {
			checkRefusal(t, live, err)
			continue
		}
		bp, err := plan.New(spec)
		if err != nil { // a cue near the end lands past it
			checkRefusal(t, spec, err)
			continue
		}
		if _, err := lp.All(); !errors.Is(err, plan.ErrUnbounded) {
			t.Fatalf("All on a live plan: %v", err)
		}
		ahead, err := lp.Ahead(0, int(bp.Count()))
		if err != nil {
			t.Fatal(err)
		}
		for i := int64(0); i < bp.Count()-1; i++ { // the last bounded one may be short
			b, _ := bp.Segment(i)
			if ahead[i] != b {
				t.Fatalf("live segment %d = %+v, bounded %+v", i, ahead[i], b)
			}
		}
	}
}

func TestSeedsDifferAndRepeat(t *testing.T) {
	seen := map[uint64]int64{}
	for i := int64(0); i < 100000; i++ {
		s := plan.SegmentSeed(42, i)
		if j, ok := seen[s]; ok {
			t.Fatalf("segments %d and %d share seed %d", j, i, s)
		}
		seen[s] = i
		if plan.SegmentSeed(42, i) != s {
			t.Fatal("seed is not a pure function")
		}
	}
	if plan.SegmentSeed(1, 0) == plan.SegmentSeed(2, 0) {
		t.Fatal("job seed does not reach the segment seed")
	}
}

// TestSkyReelsGeometry pins the worked numbers of 720p diffusion forcing.
func TestSkyReelsGeometry(t *testing.T) {
	p, err := plan.New(plan.Spec{TotalFrames: 24 * 60, Window: 121, Overlap: 37, Align: 4, Timeline: plan.Single("x")})
	if err != nil {
		t.Fatal(err)
	}
	segs, _ := p.All()
	// 121 + k×84 ≥ 1440 → k = 16, so 17 segments.
	if len(segs) != 17 {
		t.Fatalf("%d segments, want 17", len(segs))
	}
	last := segs[16]
	if last.FirstFrame != 121+15*84-37 || last.NewEnd() != 1440 {
		t.Fatalf("last segment %+v", last)
	}
	// 1440 − 1381 = 59 new frames + 37 overlap = 96 → aligned to 97, trim 1.
	if last.Frames != 97 || last.Trim != 1 {
		t.Fatalf("last segment frames %d trim %d, want 97 and 1", last.Frames, last.Trim)
	}
}

func TestNewRejects(t *testing.T) {
	ok := plan.Spec{TotalFrames: 100, Window: 97, Overlap: 17, Timeline: plan.Single("x")}
	cases := []struct {
		name string
		mut  func(*plan.Spec)
		want string
	}{
		{"zero window", func(s *plan.Spec) { s.Window = 0 }, "window"},
		{"overlap = window", func(s *plan.Spec) { s.Overlap = 97 }, "overlap"},
		{"negative overlap", func(s *plan.Spec) { s.Overlap = -1 }, "overlap"},
		{"no frames", func(s *plan.Spec) { s.TotalFrames = 0 }, "total frames"},
		{"live with frames", func(s *plan.Spec) { s.Live = true }, "live"},
		{"too long", func(s *plan.Spec) { s.TotalFrames = plan.MaxFrames + 1 }, "total frames"},
		{"no prompt", func(s *plan.Spec) { s.Timeline = nil }, "timeline"},
		{"late first cue", func(s *plan.Spec) { s.Timeline = plan.Timeline{{FromFrame: 5, Prompt: "a"}} }, "frame 0"},
		{"unordered", func(s *plan.Spec) {
			s.Timeline = plan.Timeline{{0, "a"}, {50, "b"}, {50, "c"}}
		}, "strictly increasing"},
		{"bad mode", func(s *plan.Spec) { s.Mode = 7 }, "mode"},
		{"align eats window", func(s *plan.Spec) { s.Window, s.Overlap, s.Align = 5, 2, 4 }, "overlap"},
		{"negative align", func(s *plan.Spec) { s.Align = -4 }, "align"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.mut(&s)
			_, err := plan.New(s)
			if !errors.Is(err, plan.ErrInvalidSpec) {
				t.Fatalf("got %v, want ErrInvalidSpec", err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestFromSeconds(t *testing.T) {
	tl, err := plan.FromSeconds(24, []float64{0, 20, 40.02}, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if tl[1].FromFrame != 480 || tl[2].FromFrame != 960 {
		t.Fatalf("cues at %d and %d", tl[1].FromFrame, tl[2].FromFrame)
	}
	if tl.At(479) != "a" || tl.At(480) != "b" || tl.At(1e9) != "c" {
		t.Fatal("At does not follow the cues")
	}
	for _, bad := range [][]float64{{1}, {0, -1}, {0, 5, 5}} {
		if _, err := plan.FromSeconds(24, bad, make([]string, len(bad))); err == nil {
			t.Errorf("FromSeconds(%v) accepted", bad)
		}
	}
}

// TestDemoCuesLand: the demo's timeline (cues at 0, 20 and 40 s at 24 fps,
// 720p windows of 121 frames with 37 of overlap) changes prompt at the
// boundaries nearest to the cues, frames 457 (19.04 s) and 961 (40.04 s),
// not at the next boundary after each (541, 2.5 s late).
func TestDemoCuesLand(t *testing.T) {
	tl, err := plan.FromSeconds(24, []float64{0, 20, 40}, []string{"dusk", "night", "dawn"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.New(plan.Spec{TotalFrames: 1440, Window: 121, Overlap: 37, Timeline: tl})
	if err != nil {
		t.Fatal(err)
	}
	want := []plan.Landing{
		{Cue: 0, Prompt: "dusk", Requested: 0, Landed: 0, Segment: 0},
		{Cue: 1, Prompt: "night", Requested: 480, Landed: 457, Segment: 5},
		{Cue: 2, Prompt: "dawn", Requested: 960, Landed: 961, Segment: 11},
	}
	if got := p.Landings(); !slices.Equal(got, want) {
		t.Fatalf("landings %+v, want %+v", got, want)
	}
	segs, _ := p.All()
	for i, s := range segs {
		want := map[bool]string{true: "dusk"}[i < 5] + map[bool]string{true: "night"}[i >= 5 && i < 11] + map[bool]string{true: "dawn"}[i >= 11]
		if s.Prompt != want {
			t.Errorf("segment %d (new frames from %d): prompt %q, want %q", i, s.NewStart(), s.Prompt, want)
		}
	}
}

// TestCueLanding pins the landing rule on a small geometry: W = 10, O = 2,
// so boundaries at 0, 10, 18, 26, … and at most ⌈8/2⌉ = 4 frames of error.
func TestCueLanding(t *testing.T) {
	cases := []struct {
		name   string
		total  int64 // 0: live
		cues   []int64
		landed []int64 // nil: refused
		reason string
		cue    int
	}{
		{"exact", 40, []int64{0, 10, 26}, []int64{0, 10, 26}, "", 0},
		{"nearest below", 40, []int64{0, 21}, []int64{0, 18}, "", 0},
		{"nearest above", 40, []int64{0, 23}, []int64{0, 26}, "", 0},
		{"halfway goes to the later", 40, []int64{0, 14, 30}, []int64{0, 18, 34}, "", 0},
		{"first window, near its end", 40, []int64{0, 6}, []int64{0, 10}, "", 0},
		{"first window, halfway", 40, []int64{0, 5}, nil, plan.ReasonTooFar, 1},
		{"first window, near the start", 40, []int64{0, 3}, nil, plan.ReasonShared, 1},
		{"two cues on one boundary", 40, []int64{0, 12, 13}, nil, plan.ReasonShared, 2},
		{"past the end", 24, []int64{0, 23}, nil, plan.ReasonPastEnd, 1},
		{"live has no end", 0, []int64{0, 23, 100}, []int64{0, 26, 98}, "", 0},
		{"last boundary inside the video", 27, []int64{0, 23}, []int64{0, 26}, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := plan.Spec{TotalFrames: c.total, Live: c.total == 0, Window: 10, Overlap: 2}
			for i, f := range c.cues {
				spec.Timeline = append(spec.Timeline, plan.Cue{FromFrame: f, Prompt: fmt.Sprint("p", i)})
			}
			p, err := plan.New(spec)
			if c.landed == nil {
				var ce *plan.CueError
				if !errors.As(err, &ce) || ce.Reason != c.reason || ce.Cue != c.cue || !errors.Is(err, plan.ErrInvalidSpec) {
					t.Fatalf("got %v, want cue %d refused: %s", err, c.cue, c.reason)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("timeline[%d]", c.cue)) {
					t.Fatalf("error %q does not name the cue", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, l := range p.Landings() {
				got = append(got, l.Landed)
			}
			if !slices.Equal(got, c.landed) {
				t.Fatalf("landed at %v, want %v", got, c.landed)
			}
		})
	}
}

// TestExtensionGeometry: an extension's segment 0 starts with the input's
// last O frames, before Start; with Start 0 (the input not kept) they lie
// before frame 0 of the output.
func TestExtensionGeometry(t *testing.T) {
	for _, start := range []int64{0, 40} {
		p, err := plan.New(plan.Spec{TotalFrames: 20, Window: 17, Overlap: 5, Align: 4, Mode: plan.Chain, Extend: true,
			Start: start, Timeline: plan.Single("x")})
		if err != nil {
			t.Fatal(err)
		}
		segs, err := p.All()
		if err != nil {
			t.Fatal(err)
		}
		want := []plan.Segment{
			{Index: 0, FirstFrame: start - 5, Frames: 17, Overlap: 5},
			{Index: 1, FirstFrame: start + 7, Frames: 13, Overlap: 5},
		}
		if len(segs) != len(want) {
			t.Fatalf("start %d: %d segments, want %d: %+v", start, len(segs), len(want), segs)
		}
		for i, w := range want {
			s := segs[i]
			if s.FirstFrame != w.FirstFrame || s.Frames != w.Frames || s.Overlap != w.Overlap {
				t.Errorf("start %d segment %d: %+v, want first %d frames %d overlap %d", start, i, s, w.FirstFrame, w.Frames, w.Overlap)
			}
		}
		if last := segs[len(segs)-1]; last.NewEnd() != start+20 || last.Trim != 0 {
			t.Errorf("start %d: ends at %d trim %d", start, last.NewEnd(), last.Trim)
		}
	}
	if _, err := plan.New(plan.Spec{TotalFrames: 20, Window: 17, Overlap: 5, Mode: plan.Independent, Extend: true,
		Timeline: plan.Single("x")}); !errors.Is(err, plan.ErrInvalidSpec) {
		t.Errorf("independent extension: %v, want ErrInvalidSpec", err)
	}
}
