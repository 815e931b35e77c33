package plan_test

import (
	"math/rand/v2"
	"testing"

	"github.com/spoolvideo/spool/libs/plan"
)

// TestPiecesTileTheVideo: over random specs, the pieces tile
// [Start, Start+total) exactly, in order, and LongestPiece is the longest of them.
func TestPiecesTileTheVideo(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 3000; n++ {
		spec := randomSpec(r)
		spec.Timeline = plan.Single("x") // pieces do not depend on the prompts
		p, err := plan.New(spec)
		if err != nil {
			t.Fatalf("spec %+v: %v", spec, err)
		}
		next, longest := spec.Start, 0
		for i := range p.Count() {
			first, frames, err := p.Piece(i)
			if err != nil {
				t.Fatal(err)
			}
			if first != next || frames < 1 {
				t.Fatalf("spec %+v: piece %d is [%d, +%d), want it to start at %d with ≥ 1 frame", p.Spec(), i, first, frames, next)
			}
			next, longest = first+int64(frames), max(longest, frames)
		}
		if next != spec.Start+spec.TotalFrames {
			t.Fatalf("spec %+v: the pieces end at %d, want %d", p.Spec(), next, spec.Start+spec.TotalFrames)
		}
		if got := p.LongestPiece(); got != longest {
			t.Fatalf("spec %+v: LongestPiece %d, the longest piece has %d frames", p.Spec(), got, longest)
		}
	}
}

// TestLivePieces: a live plan's pieces tile the video too, and none is
// longer than LongestPiece.
func TestLivePieces(t *testing.T) {
	cases := []struct {
		name            string
		mode            plan.Mode
		window, overlap int
		align           int
		want            int
	}{
		{"chain: the first window is the longest", plan.Chain, 121, 37, 0, 121},
		{"chain aligned", plan.Chain, 99, 18, 4, 97},
		{"independent: every piece is W−O", plan.Independent, 33, 8, 0, 25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := plan.New(plan.Spec{Live: true, Window: c.window, Overlap: c.overlap, Align: c.align, Mode: c.mode,
				Timeline: plan.Single("x")})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.LongestPiece(); got != c.want {
				t.Fatalf("LongestPiece %d, want %d", got, c.want)
			}
			next := int64(0)
			for i := range int64(50) {
				first, frames, err := p.Piece(i)
				if err != nil || first != next || frames < 1 || frames > c.want {
					t.Fatalf("piece %d: [%d, +%d), %v; want it at %d, 1..%d frames", i, first, frames, err, next, c.want)
				}
				next += int64(frames)
			}
		})
	}
}
