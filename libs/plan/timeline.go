package plan

import (
	"errors"
	"fmt"
	"math"
)

// Cue is a prompt that takes over at a frame.
type Cue struct {
	// FromFrame is the video index where the prompt asks to take over; a
	// plan lands it on the segment boundary nearest to it (Plan.Landings).
	FromFrame int64
	// Prompt is the text in force from FromFrame on.
	Prompt string
}

// Timeline is a list of cues in strictly increasing FromFrame order, the
// first at frame 0. A single prompt is a one-cue timeline.
type Timeline []Cue

// Single is the timeline of one prompt for the whole video.
func Single(prompt string) Timeline { return Timeline{{FromFrame: 0, Prompt: prompt}} }

// FromSeconds builds a timeline from cues given in seconds at fps frames per
// second, rounding each cue to the nearest frame.
func FromSeconds(fps int, fromS []float64, prompts []string) (Timeline, error) {
	if len(fromS) != len(prompts) {
		return nil, fmt.Errorf("timeline: %d times for %d prompts", len(fromS), len(prompts))
	}
	if fps < 1 {
		return nil, fmt.Errorf("timeline: fps %d must be ≥ 1", fps)
	}
	t := make(Timeline, len(fromS))
	for i, s := range fromS {
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 || s*float64(fps) > MaxFrames {
			return nil, fmt.Errorf("timeline[%d]: from %v s must be a finite time in [0, %d] s", i, s, int64(MaxFrames)/int64(fps))
		}
		t[i] = Cue{FromFrame: int64(math.Round(s * float64(fps))), Prompt: prompts[i]}
	}
	return t, t.validate()
}

// At returns the prompt in force at frame f.
func (t Timeline) At(f int64) string {
	// Cues are few; a linear scan from the end is as fast as a search.
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].FromFrame <= f {
			return t[i].Prompt
		}
	}
	return ""
}

func (t Timeline) validate() error {
	if len(t) == 0 {
		return errors.New("timeline: at least one prompt is required")
	}
	if t[0].FromFrame != 0 {
		return fmt.Errorf("timeline[0]: first cue at frame %d must be at frame 0", t[0].FromFrame)
	}
	for i := 1; i < len(t); i++ {
		if t[i].FromFrame <= t[i-1].FromFrame {
			return fmt.Errorf("timeline[%d]: cue at frame %d must come after frame %d (strictly increasing)", i, t[i].FromFrame, t[i-1].FromFrame)
		}
	}
	return nil
}
