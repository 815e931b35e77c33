package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

// lineage is what Postgres recorded of one job, read once every job has
// ended: the checks and the report are made from it.
type lineage struct {
	job       store.Job
	segments  []store.Segment
	attempts  [][]store.Attempt // per segment, in order
	artifacts []store.Artifact  // kind segment only
	pieces    []store.Piece
}

// readLineage reads every job's lineage.
func readLineage(ctx context.Context, st *store.Store, jobs []*job) (map[string]*lineage, error) {
	out := map[string]*lineage{}
	for _, j := range jobs {
		l := &lineage{}
		var err error
		if l.job, err = st.GetJob(ctx, j.ID); err != nil {
			return nil, fmt.Errorf("chaos: job %s: %w", j.ID, err)
		}
		if l.segments, err = st.ListSegments(ctx, j.ID); err != nil {
			return nil, err
		}
		as, err := st.ListJobAttempts(ctx, j.ID)
		if err != nil {
			return nil, err
		}
		l.attempts = make([][]store.Attempt, len(l.segments))
		for _, a := range as {
			if a.Index >= 0 && a.Index < len(l.attempts) {
				l.attempts[a.Index] = append(l.attempts[a.Index], a)
			}
		}
		arts, err := st.ListArtifacts(ctx, j.ID)
		if err != nil {
			return nil, err
		}
		for _, a := range arts {
			if a.Kind == store.KindSegment {
				l.artifacts = append(l.artifacts, a)
			}
		}
		if l.pieces, err = st.ListPieces(ctx, j.ID, 0); err != nil {
			return nil, err
		}
		out[j.ID] = l
	}
	return out, nil
}

// times returns every segment commit (the segment artifact's row is
// written in the transaction that commits the segment's first DONE) and
// every stitch append, by the database's clock, and the last of them.
func times(ls map[string]*lineage) (commits, appends []time.Time, last time.Time) {
	for _, l := range ls {
		for _, a := range l.artifacts {
			commits = append(commits, a.CreatedAt)
			last = later(last, a.CreatedAt)
		}
		for _, p := range l.pieces {
			appends = append(appends, p.CreatedAt)
			last = later(last, p.CreatedAt)
		}
	}
	return commits, appends, last
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// retryClass names why an attempt was not the committed one: its error
// class in lower case (abandoned, returned, stalled, transient,
// conditioning, ...), "lost" for one the reconciler re-published,
// "duplicate" for a DONE after another attempt's, or its outcome.
func retryClass(a store.Attempt) string {
	switch {
	case a.Outcome == store.OutcomeDuplicate:
		return "duplicate"
	case a.ErrorClass != "":
		return strings.ToLower(strings.TrimPrefix(a.ErrorClass, "ERROR_CLASS_"))
	case a.Outcome == store.OutcomeAbandoned && strings.HasPrefix(a.ErrorMsg, "lost"):
		return "lost"
	}
	return string(a.Outcome)
}

// Retries counts the attempts that were not committed, by retryClass, and
// the attempts in all.
type Retries struct {
	Attempts int            `json:"attempts"`
	Segments int            `json:"segments"`
	ByClass  map[string]int `json:"by_class"`
}

func retries(ls map[string]*lineage) Retries {
	r := Retries{ByClass: map[string]int{}}
	for _, l := range ls {
		for i, as := range l.attempts {
			r.Segments++
			for _, a := range as {
				r.Attempts++
				if a.Attempt != l.segments[i].CommittedAttempt || a.Outcome != store.OutcomeDone {
					r.ByClass[retryClass(a)]++
				}
			}
		}
	}
	return r
}

// attempt finds "job/segment/attempt" in the lineage.
func attemptOf(ls map[string]*lineage, task string) (store.Attempt, bool) {
	var job string
	var idx, n int
	parts := strings.Split(task, "/")
	if len(parts) != 3 {
		return store.Attempt{}, false
	}
	job = parts[0]
	if _, err := fmt.Sscanf(parts[1]+" "+parts[2], "%d %d", &idx, &n); err != nil {
		return store.Attempt{}, false
	}
	l := ls[job]
	if l == nil || idx >= len(l.attempts) {
		return store.Attempt{}, false
	}
	for _, a := range l.attempts[idx] {
		if a.Attempt == n {
			return a, true
		}
	}
	return store.Attempt{}, false
}

// abandonedAround counts the attempts settled ABANDONED (their task
// delivered again) while a NATS node was down or within the ack wait and
// a little after its return: a consumer whose leader moves may deliver
// again a task that a live worker still holds and heartbeats.
func abandonedAround(ls map[string]*lineage, faults []*Fault) int {
	n := 0
	for _, l := range ls {
		for _, as := range l.attempts {
			for _, a := range as {
				if a.FinishedAt == nil || a.ErrorClass != "ERROR_CLASS_ABANDONED" {
					continue
				}
				for _, ft := range faults {
					if (ft.Kind == FaultNATSNode || ft.Kind == FaultNATSWipe) && !a.FinishedAt.Before(ft.At) &&
						a.FinishedAt.Before(ft.Back.Add(ackWait+2*time.Second)) {
						n++
						break
					}
				}
			}
		}
	}
	return n
}
