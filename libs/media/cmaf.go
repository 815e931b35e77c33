package media

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
)

// CMAF is an encoded segment split for joining: the init segment (ftyp +
// moov, identical for every segment encoded with the same codec and size)
// and the media fragments (moof + mdat) with their decode times placed on
// the video's timeline.
type CMAF struct {
	Init  []byte
	Media []byte // the fragments, back to back
	// Frames is the number of samples in the fragments.
	Frames int
}

// ErrNotFragmented is returned for input that is not a fragmented MP4.
var ErrNotFragmented = errors.New("not a fragmented MP4")

// Retime splits an Encoder's output into init and media and moves its
// fragments to the video's timeline: the first sample decodes at
// firstFrame (in frames of 1/fps s, timescale Timescale(fps)), and the
// fragments are numbered from seq. Joining the init of any segment with the
// retimed media of consecutive segments, in order, gives one valid
// fragmented MP4 (and CMAF fragments for HLS) without re-encoding.
func Retime(data []byte, fps int, firstFrame int64, seq uint32) (CMAF, error) {
	if fps < 1 || firstFrame < 0 {
		return CMAF{}, fmt.Errorf("media: retime: fps %d and first frame %d must be ≥ 1 and ≥ 0", fps, firstFrame)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		return CMAF{}, fmt.Errorf("media: retime: %w", err)
	}
	if f.Init == nil || len(f.Segments) == 0 {
		return CMAF{}, fmt.Errorf("media: retime: %w (no init segment or no fragment)", ErrNotFragmented)
	}
	init, _, err := splitTop(data)
	if err != nil {
		return CMAF{}, fmt.Errorf("media: retime: %w", err)
	}
	out := CMAF{Init: init[:len(init):len(init)]} // capped: appending to it never writes into data
	base := uint64(firstFrame) * 1000             // one frame lasts 1000 ticks of Timescale(fps)
	var media bytes.Buffer
	for _, s := range f.Segments {
		for _, frag := range s.Fragments {
			if frag.Moof == nil || frag.Moof.Mfhd == nil {
				return CMAF{}, fmt.Errorf("media: retime: %w (a moof without its mfhd)", ErrNotFragmented)
			}
			for _, traf := range frag.Moof.Trafs {
				if traf.Tfdt == nil {
					return CMAF{}, fmt.Errorf("media: retime: %w (a fragment has no tfdt)", ErrNotFragmented)
				}
				traf.Tfdt.SetBaseMediaDecodeTime(base + traf.Tfdt.BaseMediaDecodeTime())
				for _, trun := range traf.Truns {
					out.Frames += int(trun.SampleCount())
				}
			}
			frag.Moof.Mfhd.SequenceNumber = seq
			seq++
			frag.SetTrunDataOffsets() // a tfdt that grew to 64 bits moved the data
			if err := frag.Encode(&media); err != nil {
				return CMAF{}, fmt.Errorf("media: retime: fragment: %w", err)
			}
		}
	}
	out.Media = media.Bytes()
	return out, nil
}
