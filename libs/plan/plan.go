package plan

import (
	"errors"
	"fmt"
)

// Mode says how consecutive segments relate.
type Mode int

const (
	// Chain conditions segment k+1 on segment k's last Overlap frames.
	Chain Mode = iota
	// Independent generates segments in parallel; neighbours overlap by
	// Overlap frames, which the stitcher crossfades.
	Independent
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case Chain:
		return "chain"
	case Independent:
		return "independent"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ErrInvalidSpec is wrapped by every error about a Spec.
var ErrInvalidSpec = errors.New("invalid plan spec")

// ErrUnbounded is returned by All for a live spec, whose segments never end.
var ErrUnbounded = errors.New("live plan has no last segment")

// MaxFrames bounds a bounded plan so that frame indices stay far from
// overflow: 2^40 frames is over a thousand years at 30 fps.
const MaxFrames = 1 << 40

// Spec is what the planner needs of a job.
type Spec struct {
	// TotalFrames is the video's length; 0 when Live.
	TotalFrames int64
	// Live marks an unbounded video, planned lazily.
	Live bool
	// Window is W, the frames one segment generates at most.
	Window int
	// Overlap is O, the frames shared by consecutive segments; 0 ≤ O < W.
	Overlap int
	// Align, when > 1, makes segment frame counts ≡ 1 (mod Align).
	Align int
	// Mode is chain or independent.
	Mode Mode
	// Seed is the job seed.
	Seed uint64
	// Timeline holds the prompts; see Timeline. Its frames, and those of
	// the plan's Landings, count from Start, the first generated frame.
	Timeline Timeline
	// Start is the video index of the first generated frame: frames
	// [0, Start) come from elsewhere (an extension's input video, kept in
	// the output). TotalFrames counts the generated frames only. ≥ 0.
	Start int64
	// Extend makes the plan continue a video: segment 0 begins with Overlap
	// frames of conditioning (the input's last frames, at video indices
	// [Start−Overlap, Start), negative when Start < Overlap) that it does
	// not add to the video, as every later chain segment does with its
	// predecessor's. Chain mode only.
	Extend bool
}

// Segment is one planned window.
type Segment struct {
	// Index counts segments from 0.
	Index int64
	// FirstFrame is the video index of the first frame generated, overlap
	// included; negative only for segment 0 of an extension (see
	// Spec.Extend).
	FirstFrame int64
	// Frames is how many frames the segment generates, overlap and trim
	// included.
	Frames int
	// Overlap is how many leading frames are shared with the previous
	// segment; 0 for segment 0, unless the plan extends a video.
	Overlap int
	// Trim is how many trailing frames are generated only to meet the
	// model's alignment and are discarded; 0 unless Align > 1.
	Trim int
	// Prompt is the prompt of the cue landed at or before the segment's
	// first new frame (see Landing).
	Prompt string
	// Seed is the segment seed, SegmentSeed(spec seed, Index).
	Seed uint64
}

// NewStart is the video index of the segment's first new frame.
func (s Segment) NewStart() int64 { return s.FirstFrame + int64(s.Overlap) }

// NewEnd is one past the video index of the segment's last kept frame.
func (s Segment) NewEnd() int64 { return s.FirstFrame + int64(s.Frames-s.Trim) }

// NewFrames is how many frames the segment adds to the video.
func (s Segment) NewFrames() int { return s.Frames - s.Overlap - s.Trim }

// Plan is a validated, normalised Spec ready to enumerate segments.
type Plan struct {
	spec     Spec
	landings []Landing
	landed   Timeline // the timeline with each cue moved to where it lands
}

// New validates spec, aligns its window and overlap when Align > 1, lands
// every cue of the timeline on a segment boundary (see Landings) and returns
// the plan. Errors wrap ErrInvalidSpec and name the field; a cue that cannot
// land is a *CueError.
func New(spec Spec) (*Plan, error) {
	if spec.Align < 0 {
		return nil, fmt.Errorf("%w: align %d must be ≥ 0", ErrInvalidSpec, spec.Align)
	}
	if spec.Align > 1 {
		spec.Window = alignDown(spec.Window, spec.Align)
		spec.Overlap = alignUp(spec.Overlap, spec.Align)
	}
	switch {
	case spec.Mode != Chain && spec.Mode != Independent:
		return nil, fmt.Errorf("%w: mode %d must be chain or independent", ErrInvalidSpec, spec.Mode)
	case spec.Window < 1:
		return nil, fmt.Errorf("%w: window %d frames must be ≥ 1 (after alignment)", ErrInvalidSpec, spec.Window)
	case spec.Overlap < 0 || spec.Overlap >= spec.Window:
		return nil, fmt.Errorf("%w: overlap %d frames must be in [0, window %d) (after alignment)", ErrInvalidSpec, spec.Overlap, spec.Window)
	case spec.Live && spec.TotalFrames != 0:
		return nil, fmt.Errorf("%w: total frames %d must be 0 for a live plan", ErrInvalidSpec, spec.TotalFrames)
	case !spec.Live && (spec.TotalFrames < 1 || spec.TotalFrames > MaxFrames):
		return nil, fmt.Errorf("%w: total frames %d must be in [1, %d]", ErrInvalidSpec, spec.TotalFrames, int64(MaxFrames))
	case spec.Start < 0 || spec.Start > MaxFrames:
		return nil, fmt.Errorf("%w: start frame %d must be in [0, %d]", ErrInvalidSpec, spec.Start, int64(MaxFrames))
	case spec.Extend && (spec.Mode != Chain || spec.Overlap < 1):
		return nil, fmt.Errorf("%w: an extension must be a chain with overlap ≥ 1 (mode %s, overlap %d)", ErrInvalidSpec, spec.Mode, spec.Overlap)
	}
	if err := spec.Timeline.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	landings, err := land(spec)
	if err != nil {
		return nil, err
	}
	landed := make(Timeline, len(landings))
	for i, l := range landings {
		landed[i] = Cue{FromFrame: l.Landed, Prompt: l.Prompt}
	}
	return &Plan{spec: spec, landings: landings, landed: landed}, nil
}

// Landings says where each cue of the timeline takes effect, in timeline
// order: on the segment boundary nearest to the frame it asks for, at most
// ⌈(W−O)/2⌉ frames away; of two boundaries at the same distance, the later.
// Landed frames strictly increase, the first is 0. The same for chain and
// independent plans (in independent mode the stitcher's crossfade over the
// O frames before the boundary blends the two prompts), and for live plans.
// The slice is the plan's: do not modify it.
func (p *Plan) Landings() []Landing { return p.landings }

// Spec returns the normalised spec (window and overlap aligned).
func (p *Plan) Spec() Spec { return p.spec }

// Count is the number of segments; 0 for a live plan.
func (p *Plan) Count() int64 {
	if p.spec.Live {
		return 0
	}
	w, stride := int64(p.spec.Window), int64(p.spec.Window-p.spec.Overlap)
	total := p.spec.TotalFrames + int64(p.lead())
	if total <= w {
		return 1
	}
	return 1 + (total-w+stride-1)/stride
}

// lead is the conditioning frames segment 0 takes from the input video:
// Overlap for an extension, else 0. An extension is planned as a plain
// plan of lead + TotalFrames frames whose first lead frames are given.
func (p *Plan) lead() int {
	if p.spec.Extend {
		return p.spec.Overlap
	}
	return 0
}

// Segment returns segment i. For a bounded plan i must be < Count; a live
// plan has every i ≥ 0.
func (p *Plan) Segment(i int64) (Segment, error) {
	if i < 0 || (!p.spec.Live && i >= p.Count()) {
		return Segment{}, fmt.Errorf("plan: segment %d out of range [0, %d)", i, p.Count())
	}
	w, o, lead := p.spec.Window, p.spec.Overlap, p.lead()
	stride := int64(w - o)
	// newStart counts from Start; segment 0 of an extension has lead
	// frames of overlap, so it adds w − lead frames.
	seg := Segment{Index: i, Frames: w, Overlap: lead, Seed: SegmentSeed(p.spec.Seed, i)}
	newStart := int64(0)
	if i > 0 {
		newStart = int64(w-lead) + (i-1)*stride
		seg.Overlap = o
	}
	if !p.spec.Live {
		if left := p.spec.TotalFrames - newStart; left < int64(w-seg.Overlap) {
			keep := seg.Overlap + int(left)
			seg.Frames = keep
			if p.spec.Align > 1 {
				seg.Frames = alignUp(keep, p.spec.Align)
			}
			seg.Trim = seg.Frames - keep
		}
	}
	seg.Prompt = p.landed.At(newStart)
	seg.FirstFrame = p.spec.Start + newStart - int64(seg.Overlap)
	return seg, nil
}

// All returns every segment of a bounded plan, in order.
func (p *Plan) All() ([]Segment, error) {
	if p.spec.Live {
		return nil, ErrUnbounded
	}
	n := p.Count()
	out := make([]Segment, 0, n)
	for i := range n {
		s, err := p.Segment(i)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Ahead returns up to n segments from index from, fewer at the end of a
// bounded plan. Live jobs are planned with it a few segments at a time.
func (p *Plan) Ahead(from int64, n int) ([]Segment, error) {
	if from < 0 || n < 0 {
		return nil, fmt.Errorf("plan: ahead from %d by %d: negative", from, n)
	}
	out := make([]Segment, 0, n)
	for i := from; i < from+int64(n); i++ {
		if !p.spec.Live && i >= p.Count() {
			break
		}
		s, err := p.Segment(i)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// alignDown is the largest v' ≤ v with v' ≡ 1 (mod a); 0 when none.
func alignDown(v, a int) int {
	if v < 1 {
		return 0
	}
	return v - (v-1)%a
}

// alignUp is the smallest v' ≥ v with v' ≡ 1 (mod a), for v ≥ 1; 0 stays 0.
func alignUp(v, a int) int {
	if v < 1 {
		return 0
	}
	return v + (a-(v-1)%a)%a
}
