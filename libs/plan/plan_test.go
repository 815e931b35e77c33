package plan_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
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
	cues := 1 + r.IntN(4)
	spec.Timeline = plan.Timeline{{FromFrame: 0, Prompt: "p0"}}
	at := int64(0)
	for i := 1; i < cues; i++ {
		at += 1 + r.Int64N(2000)
		spec.Timeline = append(spec.Timeline, plan.Cue{FromFrame: at, Prompt: fmt.Sprintf("p%d", i)})
	}
	return spec
}

// TestPlanInvariants checks every invariant of DESIGN §5 over random specs.
func TestPlanInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 5000; n++ {
		spec := randomSpec(r)
		p, err := plan.New(spec)
		if err != nil {
			t.Fatalf("spec %+v: %v", spec, err)
		}
		norm := p.Spec()
		segs, err := p.All()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(segs)) != p.Count() {
			t.Fatalf("All gave %d segments, Count %d", len(segs), p.Count())
		}
		next := int64(0)
		for i, s := range segs {
			ctx := fmt.Sprintf("spec %+v segment %+v", norm, s)
			// The new-frame ranges tile [0, total) with no gap and no overlap.
			if s.NewStart() != next {
				t.Fatalf("%s: new frames start at %d, want %d", ctx, s.NewStart(), next)
			}
			if s.NewFrames() < 1 {
				t.Fatalf("%s: adds no frame", ctx)
			}
			next = s.NewEnd()
			// O < frames ≤ W, and only segment 0 has no overlap.
			if s.Frames <= s.Overlap || s.Frames > norm.Window {
				t.Fatalf("%s: frames outside (overlap, window]", ctx)
			}
			if i == 0 && s.Overlap != 0 {
				t.Fatalf("%s: the first segment has overlap", ctx)
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
			// The prompt follows the timeline.
			if s.Prompt != spec.Timeline.At(s.NewStart()) {
				t.Fatalf("%s: prompt %q, timeline has %q", ctx, s.Prompt, spec.Timeline.At(s.NewStart()))
			}
		}
		if next != spec.TotalFrames {
			t.Fatalf("spec %+v: new frames end at %d, want %d", norm, next, spec.TotalFrames)
		}
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
		bp, err := plan.New(spec)
		if err != nil {
			t.Fatal(err)
		}
		lp, err := plan.New(live)
		if err != nil {
			t.Fatal(err)
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
