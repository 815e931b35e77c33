package jobspec

import (
	"fmt"
	"math"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// How far, in seconds of video, a live job may run ahead of its live edge.
const (
	MinLiveAheadS     = 1
	MaxLiveAheadS     = 3600
	DefaultLiveAheadS = 30
)

// liveAheadAllowed is what live_ahead_s accepts, in words.
var liveAheadAllowed = fmt.Sprintf("%d..%d s for a live job, 0 means %d; 0 for a bounded job", MinLiveAheadS, MaxLiveAheadS, DefaultLiveAheadS)

// checkLiveAhead normalises live_ahead_s: a live job's pacing bound, in
// seconds of video ahead of its live edge (DefaultLiveAheadS when 0); a
// bounded job must leave it 0. It runs after checkDuration.
func checkLiveAhead(spec *spoolv1.JobSpec, _ Catalog, j *Job) error {
	a := spec.GetLiveAheadS()
	switch {
	case !j.Live && a != 0:
		return fieldErr("live_ahead_s", a, liveAheadAllowed)
	case !j.Live:
		return nil
	case a == 0:
		j.LiveAheadS = DefaultLiveAheadS
	case math.IsNaN(a) || a < MinLiveAheadS || a > MaxLiveAheadS:
		return fieldErr("live_ahead_s", a, liveAheadAllowed)
	default:
		j.LiveAheadS = a
	}
	return nil
}
