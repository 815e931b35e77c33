package stitcher

import (
	"bytes"
	"context"
	"fmt"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
)

// errFrameMismatch marks a segment whose fragment does not hold the frames
// the plan gives it (av1an's FRAME MISMATCH): it is sent back for a redo.
var errFrameMismatch = media.ErrFrameMismatch

// piece builds segment seg's contribution to the video, its fragments
// renumbered to follow the previous piece's:
//
//   - chain: the whole fragment, by stream copy (the worker already dropped
//     the overlap frames, which repeat the previous segment's);
//   - independent: the crossfade of the previous segment's trailing overlap
//     with this one's leading overlap (decoded, blended, encoded with the
//     workers' codec), then this segment's core by stream copy, then its
//     own trailing overlap only if it is the last. The workers put each
//     overlap in a fragment of its own.
//
// The frames must be exactly those the plan gives the segment, starting at
// the frame where the previous piece ended. A job with sound adds one
// audio fragment after them: the AAC packets presented with the piece's
// frames (media.PieceAudio), read from the job's audio objects.
func (j *job) piece(ctx context.Context, seg store.Segment) (store.Piece, []byte, error) {
	data, err := j.s.get(ctx, blob.Key(seg.VideoKey))
	if err != nil {
		return store.Piece{}, nil, err
	}
	init, frags, err := media.Fragments(data)
	if err != nil {
		return store.Piece{}, nil, fmt.Errorf("%w: segment %d: %w", errFrameMismatch, seg.Index, err)
	}
	if j.init == nil {
		if err := j.setInit(init); err != nil {
			return store.Piece{}, nil, err
		}
	} else if !bytes.Equal(init, j.init) {
		return store.Piece{}, nil, fmt.Errorf("stitcher: segment %d was encoded with another codec configuration than segment 0", seg.Index)
	}
	kept := seg.Frames - seg.Trim
	start, last := seg.FirstFrame, !j.job.Live && seg.Index == j.job.SegmentsTotal-1
	var out []media.Fragment
	if j.job.Mode != "independent" {
		// The worker dropped the overlap: the previous segment's last
		// frames, or an extension's input's.
		start, kept = start+int64(seg.Overlap), kept-seg.Overlap
		out = frags
		if err := media.Span(frags, start, kept); err != nil {
			return store.Piece{}, nil, fmt.Errorf("stitcher: segment %d: %w", seg.Index, err)
		}
	} else {
		lead, trail, err := j.overlaps(ctx, seg, last)
		if err != nil {
			return store.Piece{}, nil, err
		}
		head, core, tail, err := media.SplitOverlaps(frags, start, lead, trail, kept)
		if err != nil {
			return store.Piece{}, nil, fmt.Errorf("stitcher: segment %d: %w", seg.Index, err)
		}
		if seg.Index == 0 || lead == 0 {
			out = append(out, head...)
		} else {
			blend, err := j.crossfade(ctx, seg, head)
			if err != nil {
				return store.Piece{}, nil, err
			}
			out = append(out, blend...)
		}
		out = append(out, core...)
		out = append(out, tail...) // the last segment's, or a tail kept whole
		if trail > 0 {
			out = out[:len(out)-len(tail)]
			j.prevTail = media.Concat(tail)
		}
	}
	var b bytes.Buffer
	p := store.Piece{Index: seg.Index, FirstFrame: out[0].Start, Fragments: len(out)}
	for i, f := range out {
		r, err := media.Renumber(f.Data, uint32(j.seq+i))
		if err != nil {
			return store.Piece{}, nil, err
		}
		b.Write(r)
		p.Frames += f.Frames
	}
	if p.FirstFrame != j.nextFrame() {
		return store.Piece{}, nil, fmt.Errorf("%w: segment %d starts at frame %d, the video is at %d", errFrameMismatch, seg.Index, p.FirstFrame, j.nextFrame())
	}
	// The piece's sound follows its frames, numbered after them.
	sound, err := j.pieceAudio(ctx, seg.Index == 0, p.FirstFrame, p.FirstFrame+int64(p.Frames), j.seq+len(out))
	if err != nil {
		return store.Piece{}, nil, err
	}
	if sound != nil {
		b.Write(sound)
		p.Fragments++
	}
	p.Bytes = int64(b.Len())
	return p, b.Bytes(), nil
}

// nextFrame is where the next piece must start: after an extension's kept
// input for the first.
func (j *job) nextFrame() int64 {
	if len(j.pieces) == 0 {
		return j.job.InputFrames
	}
	p := j.pieces[len(j.pieces)-1]
	return p.FirstFrame + int64(p.Frames)
}

// overlaps are an independent segment's leading overlap (crossfaded with
// the previous segment) and trailing one (the next segment's overlap; 0 for
// the last).
func (j *job) overlaps(ctx context.Context, seg store.Segment, last bool) (lead, trail int, err error) {
	lead = seg.Overlap
	if !last {
		next, err := j.s.store.GetSegment(ctx, j.job.ID, seg.Index+1)
		if err != nil {
			return 0, 0, err
		}
		trail = next.Overlap
	}
	if kept := seg.Frames - seg.Trim; lead+trail > kept {
		return 0, 0, fmt.Errorf("stitcher: segment %d keeps %d frames, fewer than its overlaps of %d and %d", seg.Index, kept, lead, trail)
	}
	return lead, trail, nil
}

// crossfade blends the previous segment's trailing overlap into this one's
// leading overlap and encodes the blend as fragments at the same frames.
func (j *job) crossfade(ctx context.Context, seg store.Segment, head []media.Fragment) ([]media.Fragment, error) {
	if j.prevTail == nil { // resumed: take it from the previous segment again
		prev, err := j.s.store.GetSegment(ctx, j.job.ID, seg.Index-1)
		if err != nil {
			return nil, err
		}
		data, err := j.s.get(ctx, blob.Key(prev.VideoKey))
		if err != nil {
			return nil, err
		}
		_, frags, err := media.Fragments(data)
		if err != nil {
			return nil, err
		}
		_, _, tail, err := media.SplitOverlaps(frags, prev.FirstFrame, prev.Overlap, seg.Overlap, prev.Frames-prev.Trim)
		if err != nil {
			return nil, fmt.Errorf("stitcher: segment %d: %w", prev.Index, err)
		}
		j.prevTail = media.Concat(tail)
	}
	return media.CrossfadeFragments(ctx, j.init, j.prevTail, media.Concat(head), media.CrossfadeOptions{Width: j.job.Width,
		Height: j.job.Height, FPS: j.job.FPS, Codec: j.s.codec, Start: seg.FirstFrame})
}
