package chaos

import (
	"math"
	"slices"
	"testing"
	"time"
)

// every returns events every step from from to to, leaving out [gapFrom, gapTo).
func every(t0 time.Time, from, to, step float64, gapFrom, gapTo float64) []time.Time {
	var out []time.Time
	for s := from; s < to; s += step {
		if s >= gapFrom && s < gapTo {
			continue
		}
		out = append(out, t0.Add(time.Duration(s*float64(time.Second))))
	}
	return out
}

// TestSeriesRecovery: an outage reads its length, a fault that dents
// nothing the wait for the next event, a series without events before the
// fault "no load", and one that never comes back "not recovered".
func TestSeriesRecovery(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	cases := []struct {
		name     string
		events   []time.Time
		fault    float64
		anchor   float64
		state    string
		seconds  float64
		level    float64
		tolerant float64
	}{
		{"steady", every(t0, 0, 60, 0.25, -1, -1), 30.1, 30.1, StateRecovered, 0.15, 4, 0.01},
		{"outage of 3 s", every(t0, 0, 60, 0.25, 30, 33), 30, 30, StateRecovered, 3, 4, 0.01},
		{"from the dependency's return", every(t0, 0, 60, 0.25, 30, 36), 30, 34, StateRecovered, 2, 4, 0.01},
		{"half rate for 6 s", append(every(t0, 0, 30, 0.25, -1, -1), append(every(t0, 30, 36, 0.5, -1, -1), every(t0, 36, 60, 0.25, -1, -1)...)...),
			30, 30, StateRecovered, 3, 4, 0.01},
		{"no load", every(t0, 40, 60, 0.25, -1, -1), 30, 30, StateNoLoad, 0, 0, 0},
		{"never back", every(t0, 0, 30, 0.25, -1, -1), 30, 30, StateNotRecovered, 0, 4, 0},
		{"back only at the very end", every(t0, 0, 60, 0.25, 30, 58), 30, 30, StateNotRecovered, 0, 4, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			end := c.events[len(c.events)-1]
			r := seriesRecovery(c.events, at(c.fault), at(c.anchor), end)
			if r.State != c.state || math.Abs(r.Seconds-c.seconds) > c.tolerant || math.Abs(r.Level-c.level) > 0.01 {
				t.Fatalf("got %+v, want %s after %.2f s at level %.1f/s", r, c.state, c.seconds, c.level)
			}
		})
	}
}

// TestMeasureAndSummarize: a stitcher's fault is measured on the appends,
// the others on the commits; a fault injected before another recovered
// overlaps it; the summary per kind has the median, the maximum and the
// maximum of the faults alone, and counts failed injections.
func TestMeasureAndSummarize(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	commits := every(t0, 0, 120, 0.25, 30, 32)                                             // 2 s out after fault 1
	appends := append(every(t0, 0, 30, 0.25, -1, -1), every(t0, 34, 120, 0.25, -1, -1)...) // 4 s
	faults := []*Fault{
		{ID: 1, Kind: FaultStitcher, At: at(30), Anchor: at(30)},
		{ID: 2, Kind: FaultWorkerKill, At: at(30), Anchor: at(30)},
		{ID: 3, Kind: FaultStitcher, At: at(60.1), Anchor: at(60.1)},
		{ID: 4, Kind: FaultStitcher, At: at(70.1), Anchor: at(70.1)},
		{ID: 5, Kind: FaultPostgres, At: at(80), Anchor: at(85), Err: "did not come back"},
	}
	faults[1].At, faults[1].Anchor = at(31), at(31) // injected while fault 1 recovers
	measure(faults, commits, appends, at(119.75))
	if r := faults[0].Recovery; r.Series != SeriesAppends || r.State != StateRecovered || math.Abs(r.Seconds-4) > 0.01 ||
		math.Abs(r.Commit.Seconds-2) > 0.01 || !slices.Equal(r.Overlapped, []int{2}) {
		t.Fatalf("fault 1: %+v, want 4 s on the appends (the commits' 2 s kept), overlapped by fault 2", r)
	}
	if r := faults[1].Recovery; r.Series != SeriesCommits || math.Abs(r.Seconds-1) > 0.01 || len(r.Overlapped) != 0 {
		t.Fatalf("fault 2: %+v, want 1 s on the commits, alone", r)
	}
	ks := summarize(faults)
	var st, pg KindSummary
	for _, k := range ks {
		switch k.Kind {
		case FaultStitcher:
			st = k
		case FaultPostgres:
			pg = k
		}
	}
	if len(ks) != len(FaultKinds) || st.Injected != 3 || st.Recovered != 3 || math.Abs(st.P50-0.15) > 0.01 || math.Abs(st.Max-4) > 0.01 ||
		st.Slowest != 1 || st.Alone != 2 || math.Abs(st.MaxAlone-0.15) > 0.01 || pg.Injected != 1 || pg.Failed != 1 {
		t.Fatalf("summaries %+v", ks)
	}
}
