package media_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spoolvideo/spool/libs/media"
)

// FuzzRetime: any bytes, as a worker's encoder output, are retimed without
// a panic or refused; what is retimed is a fragmented MP4 whose fragments
// Fragments splits again, holding the frames Retime counted.
// testdata/fuzz/FuzzRetime holds a real encoder output (5 frames of
// 16×16, a keyframe at 3).
func FuzzRetime(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x08ftyp\x00\x00\x00\x08moov\x00\x00\x00\x08moof\x00\x00\x00\x08mdat"), uint32(0), uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, first, seq uint32) {
		c, err := media.Retime(data, 24, int64(first), seq)
		if err != nil {
			return
		}
		init, frags, err := media.Fragments(append(append([]byte{}, c.Init...), c.Media...))
		if err != nil {
			if !errors.Is(err, media.ErrNotFragmented) {
				t.Fatalf("retimed output does not split: %v", err)
			}
			return
		}
		n := 0
		for _, fr := range frags {
			n += fr.Frames
		}
		if !bytes.Equal(init, c.Init) || n != c.Frames {
			t.Fatalf("split into an init of %d bytes (of %d) and %d frames (of %d)", len(init), len(c.Init), n, c.Frames)
		}
	})
}

// FuzzRenumber: any bytes, as a fragment, are renumbered without a panic
// or refused; renumbering what was renumbered changes nothing but the
// number, so that renumbering twice is renumbering once.
// testdata/fuzz/FuzzRenumber holds a real fragment (moof+mdat).
func FuzzRenumber(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x10moof\x00\x00\x00\x08mfhd\x00\x00\x00\x08mdat"), uint32(5))
	f.Fuzz(func(t *testing.T, frag []byte, seq uint32) {
		out, err := media.Renumber(frag, seq)
		if err != nil {
			return
		}
		other, err := media.Renumber(out, seq+1)
		if err != nil {
			t.Fatalf("a renumbered fragment does not renumber again: %v", err)
		}
		back, err := media.Renumber(other, seq)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("renumbered to %d and back: %d bytes, %v; want the %d bytes of the first", seq+1, len(back), err, len(out))
		}
	})
}
