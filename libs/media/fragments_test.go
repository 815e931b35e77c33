package media_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/spoolvideo/spool/libs/media"
)

// TestFragmentsRenumberDecode: a lossless clip with keyframes at 3 and 7
// splits into fragments of 3, 4 and 3 frames on the retimed timeline; the
// init plus the renumbered fragments decode to exactly the input frames.
func TestFragmentsRenumberDecode(t *testing.T) {
	fs := frames(10, 32, 16)
	_, data := encode(t, t.TempDir(), "k.mp4", media.EncodeOptions{Width: 32, Height: 16, FPS: 24, Codec: media.Lossless(),
		Keyframes: []int{3, 7}}, fs)
	c, err := media.Retime(data, 24, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	init, frags, err := media.Fragments(append(append([]byte{}, c.Init...), c.Media...))
	if err != nil {
		t.Fatal(err)
	}
	want := []media.Fragment{{Start: 100, Frames: 3}, {Start: 103, Frames: 4}, {Start: 107, Frames: 3}}
	if len(frags) != len(want) {
		t.Fatalf("%d fragments, want %d", len(frags), len(want))
	}
	joined := bytes.NewBuffer(append([]byte{}, init...))
	for i, f := range frags {
		if f.Start != want[i].Start || f.Frames != want[i].Frames {
			t.Fatalf("fragment %d: start %d, %d frames; want %+v", i, f.Start, f.Frames, want[i])
		}
		r, err := media.Renumber(f.Data, uint32(40+i))
		if err != nil || len(r) != len(f.Data) {
			t.Fatalf("renumber: %d bytes, %v", len(r), err)
		}
		joined.Write(r)
	}
	got, err := media.DecodeRGB(context.Background(), joined.Bytes(), 32, 16)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(fs) {
		t.Fatalf("%d frames decoded, want %d", len(got), len(fs))
	}
	for i := range fs {
		if !bytes.Equal(got[i], fs[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if _, _, err := media.Fragments([]byte("not an mp4")); err == nil {
		t.Fatal("garbage split without error")
	}
}

func TestCrossfade(t *testing.T) {
	a, b, dst := []byte{0, 255, 100}, []byte{255, 0, 101}, make([]byte, 3)
	cases := []struct {
		j, n int
		want []byte
	}{
		{0, 1, []byte{128, 128, 101}}, // halfway: (0+255+1)/2, (255+0+1)/2, (100+101+1)/2
		{0, 3, []byte{64, 191, 100}},  // weight of b 1/4
		{2, 3, []byte{191, 64, 101}},  // weight of b 3/4
	}
	for _, c := range cases {
		if err := media.Crossfade(dst, a, b, c.j, c.n); err != nil || !bytes.Equal(dst, c.want) {
			t.Fatalf("frame %d of %d: %v, want %v (%v)", c.j, c.n, dst, c.want, err)
		}
	}
	if err := media.Crossfade(dst, a, b, 3, 3); err == nil {
		t.Fatal("frame past the overlap accepted")
	}
}

// FuzzFragments: any bytes split without a panic, and whatever splits has
// fragments that lie within the input.
func FuzzFragments(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x08ftyp\x00\x00\x00\x08moof\x00\x00\x00\x08mdat"))
	f.Add([]byte("\x00\x00\x00\x01moof\x00\x00\x00\x00\x00\x00\x00\x10"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		init, frags, err := media.Fragments(data)
		if err != nil {
			return
		}
		n := len(init)
		for _, fr := range frags {
			n += len(fr.Data)
		}
		if n != len(data) {
			t.Fatalf("split into %d bytes of %d", n, len(data))
		}
	})
}
