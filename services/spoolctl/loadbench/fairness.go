package loadbench

import (
	"slices"
	"time"
)

// Tenant is one tenant's figures, in seconds from the start of the burst.
type Tenant struct {
	Jobs int `json:"jobs"`
	// TakenInS is when the dispatcher had taken in (planned and recorded)
	// the last of its jobs.
	TakenInS float64 `json:"taken_in_s"`
	// FirstQueuedS is when the dispatcher first admitted one of its
	// segments to the pool's queue; FirstStartS when a worker first
	// started one.
	FirstQueuedS float64 `json:"first_queued_s"`
	FirstStartS  float64 `json:"first_start_s"`
	// P50DoneS and LastDoneS are when half of its jobs and all of them had
	// succeeded.
	P50DoneS  float64 `json:"p50_done_s"`
	LastDoneS float64 `json:"last_done_s"`
}

// Fairness is how tenant B, whose jobs were all submitted after tenant
// A's, fared against A.
type Fairness struct {
	A Tenant `json:"tenant_a"`
	B Tenant `json:"tenant_b"`
	// AStartsBeforeB is how many of A's segments started before B's first.
	AStartsBeforeB int `json:"a_starts_before_b"`
	// BShareWhileBoth is B's share of the segments started from B's first
	// start until one tenant had no segment left to start: 0.5 when they
	// take turns, 0 when B waits for all of A.
	BShareWhileBoth float64 `json:"b_share_while_both"`
	// BShareByTenth is B's share of each tenth of all segment starts, in
	// start order: the interleaving over the run.
	BShareByTenth []float64 `json:"b_share_by_tenth"`
}

// fairness computes the figures from the run's records, t0 being the
// start of the burst.
func fairness(t0 time.Time, jobs []jobRecord, segs []segmentRecord) Fairness {
	f := Fairness{A: tenantFigures(t0, TenantA, jobs, segs), B: tenantFigures(t0, TenantB, jobs, segs)}
	order := slices.Clone(segs)
	slices.SortStableFunc(order, func(a, b segmentRecord) int { return a.started.Compare(b.started) })
	firstB, lastA, lastB := -1, -1, -1
	for i, s := range order {
		switch s.tenant {
		case TenantA:
			lastA = i
		case TenantB:
			lastB = i
			if firstB < 0 {
				firstB = i
			}
		}
	}
	if firstB >= 0 {
		f.AStartsBeforeB = firstB // every start before B's first is A's
		if end := min(lastA, lastB); end >= firstB {
			f.BShareWhileBoth = shareB(order[firstB : end+1])
		}
	}
	for k := range 10 {
		lo, hi := k*len(order)/10, (k+1)*len(order)/10
		if hi > lo {
			f.BShareByTenth = append(f.BShareByTenth, shareB(order[lo:hi]))
		}
	}
	return f
}

func tenantFigures(t0 time.Time, tenant string, jobs []jobRecord, segs []segmentRecord) Tenant {
	var t Tenant
	var done []time.Duration
	for _, j := range jobs {
		if j.tenant == tenant {
			t.Jobs++
			done = append(done, j.finished.Sub(t0))
			t.TakenInS = max(t.TakenInS, j.created.Sub(t0).Seconds())
		}
	}
	slices.Sort(done)
	t.P50DoneS, t.LastDoneS = quantile(done, 0.5).Seconds(), quantile(done, 1).Seconds()
	var queued, started time.Time
	for _, s := range segs {
		if s.tenant != tenant {
			continue
		}
		if queued.IsZero() || s.queued.Before(queued) {
			queued = s.queued
		}
		if started.IsZero() || s.started.Before(started) {
			started = s.started
		}
	}
	if !queued.IsZero() {
		t.FirstQueuedS, t.FirstStartS = queued.Sub(t0).Seconds(), started.Sub(t0).Seconds()
	}
	return t
}

func shareB(segs []segmentRecord) float64 {
	if len(segs) == 0 {
		return 0
	}
	n := 0
	for _, s := range segs {
		if s.tenant == TenantB {
			n++
		}
	}
	return float64(n) / float64(len(segs))
}
