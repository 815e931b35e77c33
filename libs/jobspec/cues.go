package jobspec

import (
	"fmt"
	"math"
	"strconv"

	"github.com/spoolvideo/spool/libs/plan"
)

// cueErr turns a cue the planner cannot land into the error of its
// timeline[i].from_s field: where the cue would land and why it cannot, and
// where this job's prompts can change, in seconds at its fps.
func cueErr(fromS float64, fps int, e *plan.CueError) *FieldError {
	at := func(f int64) string { return seconds(f, fps) }
	stride := int64(e.Window - e.Overlap)
	var why string
	switch e.Reason {
	case plan.ReasonTooFar:
		why = fmt.Sprintf("nearest segment boundary %s, %s away", at(e.Nearest), at(abs(e.Nearest-e.Requested)))
	case plan.ReasonPastEnd:
		why = fmt.Sprintf("nearest segment boundary %s, at or past the end", at(e.Nearest))
	default:
		why = fmt.Sprintf("lands at %s, as timeline[%d] does", at(e.Nearest), e.Other)
	}
	value := fmt.Sprintf("%s (frame %d; %s)", strconv.FormatFloat(fromS, 'g', -1, 64), e.Requested, why)
	allowed := fmt.Sprintf("a time within %s of a segment boundary of its own, where the prompt can change: boundaries are at 0 s, %s, "+
		"then every %s (windows of %d frames overlapping by %d at %d fps); before the end of the video",
		at(e.MaxError), at(int64(e.Window)), at(stride), e.Window, e.Overlap, fps)
	return &FieldError{Code: CodeInvalidArgument, Field: "timeline[" + strconv.Itoa(e.Cue) + "].from_s", Value: value, Allowed: allowed}
}

// seconds writes a frame count as seconds at fps, to the hundredth.
func seconds(frames int64, fps int) string {
	return strconv.FormatFloat(math.Round(float64(frames)*100/float64(fps))/100, 'f', -1, 64) + " s"
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
