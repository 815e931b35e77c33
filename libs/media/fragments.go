package media

import (
	"bytes"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
)

// Fragment is one moof+mdat of a fragmented MP4, on the video's timeline.
type Fragment struct {
	Data   []byte // the encoded moof+mdat
	Start  int64  // video frame index of its first sample
	Frames int    // samples
}

// Fragments splits a fragmented MP4 (init + fragments, as Retime writes
// it) into its init segment and its fragments, in order. Start comes from
// each fragment's tfdt in Timescale(fps) ticks, 1000 per frame.
func Fragments(data []byte) (init []byte, frags []Fragment, err error) {
	init, raw, err := splitTop(data)
	if err != nil {
		return nil, nil, fmt.Errorf("media: fragments: %w", err)
	}
	for _, r := range raw {
		f, err := mp4.DecodeFile(bytes.NewReader(r))
		if err != nil {
			return nil, nil, fmt.Errorf("media: fragments: %w", err)
		}
		if len(f.Segments) != 1 || len(f.Segments[0].Fragments) != 1 {
			return nil, nil, fmt.Errorf("media: fragments: %w (a moof without its mdat)", ErrNotFragmented)
		}
		frag := f.Segments[0].Fragments[0]
		if len(frag.Moof.Trafs) != 1 || frag.Moof.Traf.Tfdt == nil {
			return nil, nil, fmt.Errorf("media: fragments: %w (want one track with a tfdt per fragment)", ErrNotFragmented)
		}
		n := 0
		for _, trun := range frag.Moof.Traf.Truns {
			n += int(trun.SampleCount())
		}
		frags = append(frags, Fragment{Data: r, Start: int64(frag.Moof.Traf.Tfdt.BaseMediaDecodeTime() / 1000), Frames: n})
	}
	return init, frags, nil
}

// Renumber returns the fragment with its sequence number (mfhd) set to seq:
// a joined file numbers its fragments 1, 2, 3, … whatever segment each
// came from. Only that field changes.
func Renumber(frag []byte, seq uint32) ([]byte, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(frag))
	if err != nil {
		return nil, fmt.Errorf("media: renumber: %w", err)
	}
	if len(f.Segments) != 1 || len(f.Segments[0].Fragments) != 1 {
		return nil, fmt.Errorf("media: renumber: %w (want exactly one fragment)", ErrNotFragmented)
	}
	fr := f.Segments[0].Fragments[0]
	if fr.Moof == nil || fr.Moof.Mfhd == nil {
		return nil, fmt.Errorf("media: renumber: %w (a moof without its mfhd)", ErrNotFragmented)
	}
	fr.Moof.Mfhd.SequenceNumber = seq
	var b bytes.Buffer
	b.Grow(len(frag))
	if err := fr.Encode(&b); err != nil {
		return nil, fmt.Errorf("media: renumber: %w", err)
	}
	return b.Bytes(), nil
}
