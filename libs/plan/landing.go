package plan

import "fmt"

// Landing says where a cue of the timeline takes effect. A prompt can only
// change where a segment begins its new frames (a segment is generated with
// one prompt), so each cue lands on the segment boundary nearest to the
// frame it asks for.
type Landing struct {
	// Cue is the cue's index in the timeline.
	Cue int
	// Prompt is the cue's prompt.
	Prompt string
	// Requested is the frame the cue asks for (Cue.FromFrame), counted
	// from the plan's Start.
	Requested int64
	// Landed is where the prompt really takes over, counted from the
	// plan's Start: the first new frame of segment Segment.
	Landed int64
	// Segment is the index of the first segment generated with the prompt.
	Segment int64
}

// CueError is why a timeline cannot be planned: a cue has no segment
// boundary of its own within MaxError frames. It wraps ErrInvalidSpec.
type CueError struct {
	// Cue is the cue's index in the timeline.
	Cue int
	// Requested is the frame it asks for.
	Requested int64
	// Nearest is the segment boundary nearest to it (ties: the later one).
	Nearest int64
	// MaxError is ⌈(W−O)/2⌉, the farthest a cue may land from its request.
	MaxError int64
	// Window and Overlap are the plan's W and O (aligned), which place the
	// boundaries: 0, W (W−O for an extension), then every W−O frames.
	Window, Overlap int
	// Reason is one of ReasonTooFar, ReasonPastEnd, ReasonShared.
	Reason string
	// Other is the earlier cue that lands on Nearest too (ReasonShared).
	Other int
}

// Why a cue cannot land (CueError.Reason).
const (
	// ReasonTooFar: no boundary within MaxError frames; only inside the
	// first window, whose W frames have no boundary.
	ReasonTooFar = "too far from a segment boundary"
	// ReasonPastEnd: the nearest boundary is at or after the end of a
	// bounded video, so the prompt would never show.
	ReasonPastEnd = "nearest boundary past the end"
	// ReasonShared: an earlier cue lands on the same boundary, so one of
	// the two prompts would never show.
	ReasonShared = "boundary shared with an earlier cue"
)

func (e *CueError) Error() string {
	switch e.Reason {
	case ReasonTooFar:
		return fmt.Sprintf("timeline[%d]: cue at frame %d is %d frames from the nearest segment boundary (frame %d); a cue must be within %d",
			e.Cue, e.Requested, abs64(e.Nearest-e.Requested), e.Nearest, e.MaxError)
	case ReasonPastEnd:
		return fmt.Sprintf("timeline[%d]: cue at frame %d is nearest to the segment boundary at frame %d, at or past the end of the video",
			e.Cue, e.Requested, e.Nearest)
	default:
		return fmt.Sprintf("timeline[%d]: cue at frame %d lands on the segment boundary at frame %d, as timeline[%d] does",
			e.Cue, e.Requested, e.Nearest, e.Other)
	}
}

// Unwrap makes errors.Is(err, ErrInvalidSpec) true.
func (e *CueError) Unwrap() error { return ErrInvalidSpec }

// boundary is the first new frame of segment k: 0, then first (the new
// frames of segment 0), then every stride frames.
func boundary(k int64, first, stride int) int64 {
	if k == 0 {
		return 0
	}
	return int64(first) + (k-1)*int64(stride)
}

// nearest is the segment whose first new frame is nearest to frame f ≥ 0,
// the later one of two at the same distance, and that frame.
func nearest(f int64, first, stride int) (seg, at int64) {
	lo := int64(0) // the last segment starting at or before f
	if f >= int64(first) {
		lo = 1 + (f-int64(first))/int64(stride)
	}
	if b, n := boundary(lo, first, stride), boundary(lo+1, first, stride); n-f <= f-b {
		return lo + 1, n
	}
	return lo, boundary(lo, first, stride)
}

// land lands every cue of a validated timeline on the plan's segment
// boundaries: each on the one nearest to it, ties to the later. A cue with
// no boundary of its own within ⌈(W−O)/2⌉ frames, or whose boundary is at or
// past the end of a bounded video, is a *CueError.
func land(spec Spec) ([]Landing, error) {
	maxErr := int64(spec.Window-spec.Overlap+1) / 2
	out := make([]Landing, len(spec.Timeline))
	for i, c := range spec.Timeline {
		first := spec.Window // segment 0's new frames
		if spec.Extend {
			first -= spec.Overlap
		}
		seg, at := nearest(c.FromFrame, first, spec.Window-spec.Overlap)
		cerr := &CueError{Cue: i, Requested: c.FromFrame, Nearest: at, MaxError: maxErr, Window: spec.Window, Overlap: spec.Overlap}
		switch {
		case abs64(at-c.FromFrame) > maxErr:
			cerr.Reason = ReasonTooFar
		case !spec.Live && at >= spec.TotalFrames:
			cerr.Reason = ReasonPastEnd
		case i > 0 && at == out[i-1].Landed:
			cerr.Reason, cerr.Other = ReasonShared, i-1
		}
		if cerr.Reason != "" {
			return nil, cerr
		}
		out[i] = Landing{Cue: i, Prompt: c.Prompt, Requested: c.FromFrame, Landed: at, Segment: seg}
	}
	return out, nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
