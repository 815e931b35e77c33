package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// ErrFrameMismatch marks fragments that do not hold the frames their plan
// gives them (av1an's FRAME MISMATCH).
var ErrFrameMismatch = errors.New("FRAME MISMATCH")

// Span checks that frags cover frames [start, start+n) back to back.
func Span(frags []Fragment, start int64, n int) error {
	at := start
	for _, f := range frags {
		if f.Start != at {
			return fmt.Errorf("%w: a fragment starts at frame %d, want %d", ErrFrameMismatch, f.Start, at)
		}
		at += int64(f.Frames)
	}
	if at != start+int64(n) {
		return fmt.Errorf("%w: %d frames from %d, the plan has %d", ErrFrameMismatch, at-start, start, n)
	}
	return nil
}

// SplitOverlaps cuts an independent segment's fragments (kept frames from
// start) into its leading overlap of lead frames, its core and its trailing
// overlap of trail frames. The overlaps must fall on fragment boundaries,
// as the workers encode them.
func SplitOverlaps(frags []Fragment, start int64, lead, trail, kept int) (head, core, tail []Fragment, err error) {
	if err := Span(frags, start, kept); err != nil {
		return nil, nil, nil, err
	}
	h, t := start+int64(lead), start+int64(kept-trail)
	for _, f := range frags {
		end := f.Start + int64(f.Frames)
		switch {
		case end <= h:
			head = append(head, f)
		case f.Start >= h && end <= t:
			core = append(core, f)
		case f.Start >= t:
			tail = append(tail, f)
		default:
			return nil, nil, nil, fmt.Errorf("%w: a fragment spans frames %d..%d across an overlap edge (%d, %d)", ErrFrameMismatch, f.Start, end, h, t)
		}
	}
	return head, core, tail, nil
}

// CrossfadeOptions describe the video a crossfade belongs to.
type CrossfadeOptions struct {
	Width, Height, FPS int
	Codec              Codec
	Start              int64 // the video frame of the overlap's first frame
}

// CrossfadeFragments decodes the earlier segment's trailing overlap (a) and
// the later one's leading overlap (b), both fragments of the init segment
// init, blends them frame by frame with Crossfade and encodes the blend with
// the same codec as fragments placed at o.Start. The blend's init must equal
// init: every piece of a video shares one codec configuration.
func CrossfadeFragments(ctx context.Context, init, a, b []byte, o CrossfadeOptions) ([]Fragment, error) {
	fa, err := DecodeRGB(ctx, append(append([]byte{}, init...), a...), o.Width, o.Height)
	if err != nil {
		return nil, err
	}
	fb, err := DecodeRGB(ctx, append(append([]byte{}, init...), b...), o.Width, o.Height)
	if err != nil {
		return nil, err
	}
	n := len(fa)
	if n == 0 || len(fb) != n {
		return nil, fmt.Errorf("%w: overlaps of %d and %d frames", ErrFrameMismatch, len(fa), len(fb))
	}
	var enc bytes.Buffer
	e, err := NewEncoder(ctx, &enc, EncodeOptions{Width: o.Width, Height: o.Height, FPS: o.FPS, Codec: o.Codec})
	if err != nil {
		return nil, err
	}
	mixed := make([]byte, o.Width*o.Height*3)
	for i := range n {
		if err := Crossfade(mixed, fa[i], fb[i], i, n); err != nil {
			_ = e.Close()
			return nil, err
		}
		if err := e.WriteFrame(mixed); err != nil {
			_ = e.Close()
			return nil, err
		}
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	c, err := Retime(enc.Bytes(), o.FPS, o.Start, 1)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(c.Init, init) {
		return nil, errors.New("media: the crossfade's codec configuration differs from the segments' (use the workers' codec)")
	}
	_, blend, err := Fragments(append(c.Init, c.Media...))
	return blend, err
}

// Concat joins fragments' bytes.
func Concat(frags []Fragment) []byte {
	var b []byte
	for _, f := range frags {
		b = append(b, f.Data...)
	}
	return b
}
