package audiobench_test

import (
	"strings"
	"testing"

	"github.com/spoolvideo/spool/services/spoolctl/audiobench"
	"github.com/spoolvideo/spool/services/stitcher/stitchbench"
)

func TestRowsHoldTheStitchToItsTargets(t *testing.T) {
	base := audiobench.Audio{TrackBytes: 230400000, BytesRatio: 0.0014, WholeOverSegment: 100,
		Reads: []audiobench.SegmentRead{{At: "start", Reads: 50}, {At: "middle", Reads: 50}, {At: "end", Reads: 50}}}
	for _, tc := range []struct {
		name          string
		without, with stitchbench.Stitch
		want          []string // the targets of the stitch rows, in order
	}{
		{"none measured", stitchbench.Stitch{}, stitchbench.Stitch{}, nil},
		{"both pass", stitchbench.Stitch{Segments: 1, FinalizeMS: 30, PeakRSSMB: 51}, stitchbench.Stitch{Segments: 1, FinalizeMS: 1000, PeakRSSMB: 64},
			[]string{"≤ 1000 ms: PASS", "≤ 1000 ms: PASS", "≤ 64 MB: PASS", "≤ 64 MB: PASS"}},
		{"audio fails both", stitchbench.Stitch{Segments: 1, FinalizeMS: 30, PeakRSSMB: 51}, stitchbench.Stitch{Segments: 1, FinalizeMS: 1001, PeakRSSMB: 64.5},
			[]string{"≤ 1000 ms: PASS", "≤ 1000 ms: FAIL", "≤ 64 MB: PASS", "≤ 64 MB: FAIL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := base
			a.Stitch, a.StitchSound = tc.without, tc.with
			var got []string
			reads := 0
			for _, r := range a.Rows() {
				if strings.HasPrefix(r.Target, "≤") {
					got = append(got, r.Target)
				}
				if strings.HasPrefix(r.Figure, "segment read, ") {
					reads++
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("targets %q, want %q", got, tc.want)
			}
			if reads != 3 {
				t.Fatalf("%d segment read rows, want 3", reads)
			}
		})
	}
}
