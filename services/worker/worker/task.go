package worker

import (
	"github.com/spoolvideo/spool/libs/infer"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// These functions say how a task becomes a fragment. The worker uses them,
// and so does the single-process oracle (spoolctl render --local), so that
// both make the same bytes.

// Media is what a task reads besides its conditioning tail: a segment
// that starts from media reads its prefix frames (PrefixFrames frames of
// RGB24); a job with audio reads its segment's samples (SegmentAudio); a
// talking head its reference frames (SegmentReference).
type Media struct {
	Prefix    []byte
	Audio     []float32
	Reference []byte
}

// Request is the engine request of a task, conditioned on cond (the
// previous segment's tail state, or nil) or, for a segment that starts from
// media, on m.Prefix: the engine then conditions its first PrefixFrames
// frames on them. It hears m.Audio at the task's audio rate and animates
// m.Reference.
func Request(t *spoolv1.SegmentTask, cond []byte, m Media) infer.Request {
	r := infer.Request{Prompt: t.Prompt, Seed: t.Seed, Width: int(t.Width), Height: int(t.Height),
		Frames: int(t.Frames), Overlap: int(t.Overlap), Steps: int(t.Steps), Guidance: t.Guidance,
		FirstFrame: t.FirstFrame, Cond: cond, TailFrames: int(t.TailFrames), FPS: int(t.Fps),
		Audio: m.Audio, Reference: m.Reference}
	if m.Audio != nil {
		r.AudioRate = int(t.AudioRate)
	}
	if t.PrefixFrames > 0 {
		r.Overlap, r.Prefix, r.Cond = int(t.PrefixFrames), m.Prefix, nil
	}
	return r
}

// Keeps reports whether frame i of the segment goes into its fragment. In
// chain mode the first Overlap frames are dropped: they are the previous
// segment's last frames, reproduced exactly from its tail. In independent
// mode they are kept for the stitcher's crossfade. Frames generated only to
// meet the model's alignment (trim) are dropped at the end.
func Keeps(t *spoolv1.SegmentTask, i int) bool {
	if t.Mode == spoolv1.Mode_MODE_CHAIN && i < int(t.Overlap) {
		return false
	}
	return i < int(t.Frames-t.TrimFrames)
}

// KeptStart is the video frame of the fragment's first frame.
func KeptStart(t *spoolv1.SegmentTask) int64 {
	if t.Mode == spoolv1.Mode_MODE_CHAIN {
		return t.FirstFrame + int64(t.Overlap)
	}
	return t.FirstFrame
}

// CrossfadeKeyframes are the extra keyframes of an independent segment: at
// the end of its leading overlap and at the start of its trailing one, so
// that each overlap is a fragment of its own that the stitcher decodes and
// blends while it stream-copies the rest. A chain segment needs none.
func CrossfadeKeyframes(t *spoolv1.SegmentTask) []int {
	if t.Mode != spoolv1.Mode_MODE_INDEPENDENT {
		return nil
	}
	kept := int(t.Frames - t.TrimFrames)
	var at []int
	for _, k := range []int{int(t.Overlap), kept - int(t.CrossfadeFrames)} {
		if k > 0 && k < kept {
			at = append(at, k)
		}
	}
	return at
}
