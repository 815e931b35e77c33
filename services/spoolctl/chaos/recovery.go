package chaos

import (
	"math"
	"slices"
	"sort"
	"time"
)

// Recovery measurement (see the package documentation):
//
//   - levelWindow: the level before a fault at f is a series' mean rate
//     over [f − levelWindow, f);
//   - the series is back at its first event e ≥ the fault's anchor such
//     that [e, e + backWindow] holds at least backShare × level ×
//     backWindow of its events: production restarted at e and ran at
//     about its level; the recovery time is e − anchor (a clean outage of
//     g seconds reads g; a fault that dents nothing, the time to the next
//     event);
//   - a series with fewer than minLevelEvents events in the level window
//     had no load to lose: "no load".
const (
	levelWindow    = 10 * time.Second
	backWindow     = 5 * time.Second
	backShare      = 0.75
	minLevelEvents = 3
)

// Series recovery states.
const (
	StateRecovered    = "recovered"
	StateNotRecovered = "not recovered"
	StateNoLoad       = "no load"
)

// SeriesRecovery is how one series (segment commits, or stitch appends)
// came back after a fault.
type SeriesRecovery struct {
	State   string  `json:"state"`
	Level   float64 `json:"level_per_s"` // events per second before the fault
	Seconds float64 `json:"s"`           // from the anchor, when recovered
}

// Series a fault's recovery is measured on.
const (
	SeriesCommits = "commits" // segments committed (the dispatcher's work)
	SeriesAppends = "appends" // segments appended to their videos (the stitcher's)
)

// seriesOf is the series a kind of fault is measured on: the stitcher's
// appends for a stitcher, the commits for everything else (a stitcher's
// fault leaves the commits alone, and appends follow commits in bursts: a
// job's next append waits for its next segment in order).
func seriesOf(kind string) string {
	if kind == FaultStitcher {
		return SeriesAppends
	}
	return SeriesCommits
}

// Recovery is a fault's recovery, on its kind's series; both series'
// readings are kept.
type Recovery struct {
	Series  string  `json:"series"`
	State   string  `json:"state"`
	Seconds float64 `json:"s"` // when recovered, from the anchor
	// SinceFault is from the injection: for a dependency's fault, its
	// outage and restart included.
	SinceFault float64        `json:"since_fault_s"`
	Commit     SeriesRecovery `json:"commit"`
	Append     SeriesRecovery `json:"append"`
	// Overlapped lists the faults injected, or still under way, between
	// this one's injection and its recovery: its time is partly theirs.
	Overlapped []int `json:"overlapped,omitempty"`
}

// seriesRecovery measures one sorted series for a fault injected at f and
// measured from anchor, seeing events until end.
func seriesRecovery(events []time.Time, f, anchor, end time.Time) SeriesRecovery {
	count := func(from, to time.Time, closed bool) int { // events in [from, to) or [from, to]
		i := sort.Search(len(events), func(i int) bool { return !events[i].Before(from) })
		j := sort.Search(len(events), func(i int) bool {
			if closed {
				return events[i].After(to)
			}
			return !events[i].Before(to)
		})
		return max(j-i, 0)
	}
	before := count(f.Add(-levelWindow), f, false)
	level := float64(before) / levelWindow.Seconds()
	r := SeriesRecovery{Level: level}
	if before < minLevelEvents {
		r.State = StateNoLoad
		return r
	}
	need := max(int(math.Ceil(backShare*level*backWindow.Seconds())), 1)
	first := sort.Search(len(events), func(i int) bool { return !events[i].Before(anchor) })
	for _, e := range events[first:] {
		if e.Add(backWindow).After(end) {
			break
		}
		if count(e, e.Add(backWindow), true) >= need {
			r.State, r.Seconds = StateRecovered, e.Sub(anchor).Seconds()
			return r
		}
	}
	r.State = StateNotRecovered
	return r
}

// measure fills in each fault's recovery from the commit and append times.
func measure(faults []*Fault, commits, appends []time.Time, end time.Time) {
	slices.SortFunc(commits, time.Time.Compare)
	slices.SortFunc(appends, time.Time.Compare)
	for _, ft := range faults {
		if ft.Err != "" {
			continue
		}
		r := &Recovery{Series: seriesOf(ft.Kind), Commit: seriesRecovery(commits, ft.At, ft.Anchor, end),
			Append: seriesRecovery(appends, ft.At, ft.Anchor, end)}
		main := r.Commit
		if r.Series == SeriesAppends {
			main = r.Append
		}
		r.State, r.Seconds = main.State, main.Seconds
		if r.State == StateRecovered {
			r.SinceFault = ft.Anchor.Sub(ft.At).Seconds() + r.Seconds
		}
		ft.Recovery = r
	}
	for _, ft := range faults {
		if ft.Recovery == nil || ft.Recovery.State != StateRecovered {
			continue
		}
		until := ft.Anchor.Add(time.Duration(ft.Recovery.Seconds * float64(time.Second)))
		for _, g := range faults {
			during := g.At.After(ft.At) || g.Back.After(ft.At) // injected after it, or still away when it came
			if g != ft && g.At.Before(until) && during {
				ft.Recovery.Overlapped = append(ft.Recovery.Overlapped, g.ID)
			}
		}
	}
}

// KindSummary is the recovery of every fault of one kind.
type KindSummary struct {
	Kind         string  `json:"kind"`
	Series       string  `json:"series"`
	Injected     int     `json:"injected"`
	Recovered    int     `json:"recovered"`
	NotRecovered int     `json:"not_recovered"`
	NoLoad       int     `json:"no_load"`
	Failed       int     `json:"failed"` // injections that failed
	P50          float64 `json:"p50_s"`
	Max          float64 `json:"max_s"`
	Slowest      int     `json:"slowest_fault,omitempty"` // the fault id of Max
	// Alone counts the recovered faults no other overlapped, and MaxAlone
	// is the longest of their recoveries.
	Alone    int     `json:"alone"`
	MaxAlone float64 `json:"max_alone_s"`
	// MaxSinceFault is the longest time from an injection to its
	// recovery: a dependency's outage and restart included.
	MaxSinceFault float64 `json:"max_since_fault_s"`
}

// summarize groups the faults by kind, in FaultKinds' order.
func summarize(faults []*Fault) []KindSummary {
	var out []KindSummary
	for _, kind := range FaultKinds {
		s := KindSummary{Kind: kind, Series: seriesOf(kind)}
		var secs []float64
		for _, ft := range faults {
			if ft.Kind != kind {
				continue
			}
			s.Injected++
			switch {
			case ft.Err != "" || ft.Recovery == nil:
				s.Failed++
			case ft.Recovery.State == StateNoLoad:
				s.NoLoad++
			case ft.Recovery.State == StateNotRecovered:
				s.NotRecovered++
			default:
				s.Recovered++
				secs = append(secs, ft.Recovery.Seconds)
				if ft.Recovery.Seconds >= s.Max {
					s.Max, s.Slowest = ft.Recovery.Seconds, ft.ID
				}
				s.MaxSinceFault = max(s.MaxSinceFault, ft.Recovery.SinceFault)
				if len(ft.Recovery.Overlapped) == 0 {
					s.Alone++
					s.MaxAlone = max(s.MaxAlone, ft.Recovery.Seconds)
				}
			}
		}
		if len(secs) > 0 {
			slices.Sort(secs)
			s.P50 = secs[(len(secs)-1)/2]
		}
		out = append(out, s)
	}
	return out
}
