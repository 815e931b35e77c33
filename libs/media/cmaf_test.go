package media_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolvideo/spool/libs/media"
)

// TestRetimeJoinsSegmentsByStreamCopy: two segments encoded apart, retimed
// to follow each other and joined (one init, both media parts) decode to
// exactly the frames of each, in order, with continuous timestamps.
func TestRetimeJoinsSegmentsByStreamCopy(t *testing.T) {
	dir := t.TempDir()
	all := frames(40, 96, 64)
	o := media.EncodeOptions{Width: 96, Height: 64, FPS: 24, Codec: media.H264(), Keyframes: []int{10}}
	p1, b1 := encode(t, dir, "s1.mp4", o, all[:25])
	p2, b2 := encode(t, dir, "s2.mp4", o, all[25:])
	c1, err := media.Retime(b1, 24, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := media.Retime(b2, 24, 25, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1.Init, c2.Init) {
		t.Fatal("the init segments of two segments differ: fragments could not share one")
	}
	if c1.Frames != 25 || c2.Frames != 15 {
		t.Fatalf("frames %d and %d", c1.Frames, c2.Frames)
	}
	joined := filepath.Join(dir, "joined.mp4")
	if err := os.WriteFile(joined, append(append(append([]byte{}, c1.Init...), c1.Media...), c2.Media...), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := media.FrameMD5(ctx, joined, "rgb24")
	if err != nil {
		t.Fatal(err)
	}
	want1, _ := media.FrameMD5(ctx, p1, "rgb24")
	want2, _ := media.FrameMD5(ctx, p2, "rgb24")
	want := append(want1, want2...)
	if len(got) != len(want) {
		t.Fatalf("joined has %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("frame %d differs after the join", i)
		}
	}
	info, err := media.Probe(ctx, joined, media.ProbeOptions{CountFrames: true})
	if err != nil || info.Frames != 40 || info.DurationS < 40.0/24-0.01 || info.DurationS > 40.0/24+0.01 {
		t.Fatalf("probe %+v %v", info, err)
	}
	if _, err := media.Retime([]byte("not an mp4"), 24, 0, 1); err == nil {
		t.Fatal("garbage retimed")
	}
}

// TestRetimeFarAlong: decode times past 2^32 ticks (tfdt version 1) keep
// the fragment valid.
func TestRetimeFarAlong(t *testing.T) {
	dir := t.TempDir()
	_, b := encode(t, dir, "s.mp4", media.EncodeOptions{Width: 64, Height: 64, FPS: 24, Codec: media.H264()}, frames(5, 64, 64))
	c, err := media.Retime(b, 24, 5_000_000, 1) // 5e9 ticks
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "far.mp4")
	_ = os.WriteFile(p, append(c.Init, c.Media...), 0o644)
	sums, err := media.FrameMD5(context.Background(), p, "rgb24")
	if err != nil || len(sums) != 5 {
		t.Fatalf("%d frames: %v", len(sums), err)
	}
}
