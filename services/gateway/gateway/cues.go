package gateway

import (
	"encoding/json"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"

	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/plan"
)

// cueView is where one cue of a job's timeline takes effect: the prompt
// changes only where a segment's new frames begin, so each cue lands on the
// segment boundary nearest to the time it asked for (see plan.Landing).
type cueView struct {
	Prompt         string  `json:"prompt"` // shortened to promptChars characters
	RequestedFrame int64   `json:"requested_frame"`
	RequestedS     float64 `json:"requested_s"` // seconds, to the millisecond
	LandedFrame    int64   `json:"landed_frame"`
	LandedS        float64 `json:"landed_s"`
	Segment        int64   `json:"segment"` // the first segment with this prompt
}

// promptChars bounds a prompt in a status: a timeline may hold 256 prompts
// of 4 KB, and the dashboard asks for the status every second or two.
const promptChars = 100

// cueViews plans a job's stored spec again with the catalog (the plan is a
// pure function of both, as the dispatcher's is) and says where each cue
// lands; nil for a spec that does not plan, such as a rejected job's. A job
// that lasts as long as its audio is planned with the frames its row
// records (total, from intake); nil before.
func cueViews(spec json.RawMessage, total int64, cat jobspec.Catalog) []cueView {
	var s spoolv1.JobSpec
	if protojson.Unmarshal(spec, &s) != nil {
		return nil
	}
	j, err := jobspec.Validate(&s, cat)
	if err != nil {
		return nil
	}
	if j.AudioLength {
		if total <= 0 {
			return nil
		}
		j.TotalFrames = total
		if j.Plan, err = plan.New(j.PlanSpec()); err != nil {
			return nil
		}
	}
	if j.Plan == nil {
		return nil
	}
	secs := func(f int64) float64 { return math.Round(float64(f)*1000/float64(j.FPS)) / 1000 }
	ls := j.Plan.Landings()
	out := make([]cueView, len(ls))
	for i, l := range ls {
		out[i] = cueView{Prompt: shorten(l.Prompt, promptChars), RequestedFrame: l.Requested, RequestedS: secs(l.Requested),
			LandedFrame: l.Landed, LandedS: secs(l.Landed), Segment: l.Segment}
	}
	return out
}

// shorten cuts s to n characters, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
