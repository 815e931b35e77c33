package chaos

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

// Load sizing. A recovery is measured against the commit rate before its
// fault, so every fault needs the workers busy around it, until the monkey
// is done; how many segments that takes depends on the machine and on the
// faults themselves. The load therefore sizes itself as it goes: each job
// after the first third is made, when it is submitted, long enough that
// the segments not yet committed, at the rate of the last rateWindow, last
// until the load's end; that share is split between the jobs still to be
// submitted, by their weights. No job gets more than one worker could
// commit until then, so that a last, long chain does not outlast the load
// by minutes.
const (
	rateWindow     = 20 * time.Second
	minJobSegments = 3
	maxJobSegments = 200
)

// loadSizer sizes the jobs by the commit rate it reads from Postgres.
type loadSizer struct {
	st      *store.Store
	until   time.Time // the load should last until then
	workers int
	mu      sync.Mutex
	planned int // segments of the jobs sized so far
	samples []sample
	initial float64 // the rate measured before the first fault
}

type sample struct {
	at   time.Time
	done int
}

// add counts the segments of jobs sized without the sizer.
func (l *loadSizer) add(jobs []*job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range jobs {
		l.planned += j.segments()
	}
}

// size makes j its share of the load: with left jobs still to come (j
// included) of total weight weights, and its own weight, the segments
// needed until l.until at the recent commit rate, less those not yet
// committed.
func (l *loadSizer) size(ctx context.Context, j *job, weights float64) {
	done, err := l.st.CountSegments(ctx, store.SegDone)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	rate := l.initial
	if err == nil {
		l.samples = append(l.samples, sample{now, done})
		for len(l.samples) > 1 && now.Sub(l.samples[1].at) >= rateWindow {
			l.samples = l.samples[1:]
		}
		if first := l.samples[0]; now.Sub(first.at) >= rateWindow/2 {
			rate = float64(done-first.done) / now.Sub(first.at).Seconds()
		}
	}
	left := max(l.until.Sub(now).Seconds(), 0)
	need := rate*left - float64(l.planned-done)
	n := min(int(math.Ceil(need*j.Weight/weights)), int(rate*left/float64(l.workers)))
	j.size(min(max(n, minJobSegments), maxJobSegments))
	l.planned += j.segments()
}
