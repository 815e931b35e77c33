package plan_test

import (
	"testing"

	"github.com/spoolvideo/spool/libs/plan"
)

// FuzzPlan: whatever the numbers, New either refuses them or yields segments
// that tile [0, total) within (overlap, window].
func FuzzPlan(f *testing.F) {
	f.Add(int64(1440), 121, 37, 4, false)
	f.Add(int64(1), 1, 0, 0, false)
	f.Add(int64(0), 97, 17, 4, true)
	f.Add(int64(-5), -3, 9, -1, false)
	f.Add(int64(1)<<40, 2, 1, 0, false)
	f.Fuzz(func(t *testing.T, total int64, w, o, align int, live bool) {
		p, err := plan.New(plan.Spec{TotalFrames: total, Live: live, Window: w, Overlap: o, Align: align, Timeline: plan.Single("x")})
		if err != nil {
			return
		}
		spec := p.Spec()
		if live || p.Count() > 10000 {
			segs, err := p.Ahead(1<<20, 3)
			if err != nil || (live && len(segs) != 3) {
				t.Fatalf("ahead: %v %d", err, len(segs))
			}
			return
		}
		segs, err := p.All()
		if err != nil {
			t.Fatal(err)
		}
		next := int64(0)
		for _, s := range segs {
			if s.NewStart() != next || s.Frames <= s.Overlap || s.Frames > spec.Window || s.NewFrames() < 1 {
				t.Fatalf("spec %+v: bad segment %+v (next %d)", spec, s, next)
			}
			next = s.NewEnd()
		}
		if next != total {
			t.Fatalf("spec %+v: ends at %d, want %d", spec, next, total)
		}
	})
}
