package stitcher

import (
	"bytes"
	"context"
	"fmt"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/hls"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
)

// input is an extension's kept input video (include_input) as the
// output's first frames: the fragmented MP4 intake made with the workers'
// codec, its fragments renumbered from 1 and stored as the preview's
// in<k>.m4s media segments. It returns the init segment it was encoded
// with, which must be the workers', and the fragments' bytes. Only for
// segment 0's append, or when a resumed stitch rebuilds it; both write the
// same bytes.
func (j *job) input(ctx context.Context, previews bool) (init, data []byte, frags int, err error) {
	raw, err := j.s.get(ctx, blob.Key(j.job.InputKey))
	if err != nil {
		return nil, nil, 0, err
	}
	init, fs, err := media.Fragments(raw)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("stitcher: input video of %s: %w", j.job.ID, err)
	}
	var b bytes.Buffer
	frames := int64(0)
	for k, f := range fs {
		if f.Start != frames {
			return nil, nil, 0, fmt.Errorf("%w: input video of %s: fragment %d starts at frame %d, want %d", errFrameMismatch, j.job.ID, k, f.Start, frames)
		}
		r, err := media.Renumber(f.Data, uint32(1+k))
		if err != nil {
			return nil, nil, 0, err
		}
		if previews {
			if _, err := j.s.blob.Put(ctx, mustKey(blob.HLSInputSegment(j.job.ID, uint32(k))), bytes.NewReader(r), int64(len(r)),
				blob.PutOptions{ContentType: "video/iso.segment"}); err != nil {
				return nil, nil, 0, err
			}
		}
		b.Write(r)
		frames += int64(f.Frames)
	}
	if frames != j.job.InputFrames {
		return nil, nil, 0, fmt.Errorf("%w: input video of %s holds %d frames, the job keeps %d", errFrameMismatch, j.job.ID, frames, j.job.InputFrames)
	}
	return init, b.Bytes(), len(fs), nil
}

// inputSegments are the playlist's media segments of an extension's kept
// input: intake cut it into fragments of the plan's longest piece (the
// last shorter), each a segment in<k>.m4s.
func inputSegments(jb store.Job, fps int) []hls.Segment {
	if jb.InputFrames == 0 || jb.LongestPiece < 1 {
		return nil
	}
	var out []hls.Segment
	for k, left := 0, jb.InputFrames; left > 0; k++ {
		n := min(left, int64(jb.LongestPiece))
		out = append(out, hls.Segment{URI: fmt.Sprintf("in%d.m4s", k), Duration: float64(n) / float64(fps)})
		left -= n
	}
	return out
}
