package media_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/spoolvideo/spool/libs/media"
)

// frames draws n moving gradients of w×h.
func frames(n, w, h int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		f := make([]byte, w*h*3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				p := (y*w + x) * 3
				f[p], f[p+1], f[p+2] = byte(x*4+i*7), byte(y*4+i*3), byte((x+y)*2)
			}
		}
		out[i] = f
	}
	return out
}

func encode(t *testing.T, dir, name string, o media.EncodeOptions, fs [][]byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	e, err := media.NewEncoder(context.Background(), &buf, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if err := e.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, buf.Bytes()
}

func TestEncodeIsDeterministicAndProbes(t *testing.T) {
	dir := t.TempDir()
	fs := frames(30, 128, 72)
	o := media.EncodeOptions{Width: 128, Height: 72, FPS: 24, Codec: media.H264(), Keyframes: []int{10, 20}}
	p1, b1 := encode(t, dir, "a.mp4", o, fs)
	_, b2 := encode(t, dir, "b.mp4", o, fs)
	if !bytes.Equal(b1, b2) {
		t.Fatal("the same frames encoded to different bytes")
	}
	info, err := media.Probe(context.Background(), p1, media.ProbeOptions{CountFrames: true})
	if err != nil {
		t.Fatal(err)
	}
	if info.Frames != 30 || info.Width != 128 || info.Height != 72 || info.FPS != 24 || info.Codec != "h264" {
		t.Fatalf("probe %+v", info)
	}
	// A fragment per forced keyframe: three moof boxes.
	if n := bytes.Count(b1, []byte("moof")); n != 3 {
		t.Fatalf("%d fragments, want 3", n)
	}
}

func TestLosslessRoundTrip(t *testing.T) {
	dir := t.TempDir()
	fs := frames(12, 64, 64)
	p, _ := encode(t, dir, "l.mp4", media.EncodeOptions{Width: 64, Height: 64, FPS: 30, Codec: media.Lossless()}, fs)
	sums, err := media.FrameMD5(context.Background(), p, "rgb24")
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != len(fs) {
		t.Fatalf("%d frames decoded, want %d", len(sums), len(fs))
	}
	for i, f := range fs {
		want := md5.Sum(f)
		if sums[i] != hex.EncodeToString(want[:]) {
			t.Fatalf("frame %d differs after a lossless round trip", i)
		}
	}
}

func TestEncoderErrors(t *testing.T) {
	if _, err := media.NewEncoder(context.Background(), &bytes.Buffer{}, media.EncodeOptions{Width: 63, Height: 64, FPS: 24, Codec: media.H264()}); err == nil {
		t.Error("odd width accepted")
	}
	if _, err := media.NewEncoder(context.Background(), &bytes.Buffer{}, media.EncodeOptions{Width: 64, Height: 64, FPS: 24, Codec: media.Codec{Name: "vp9", Threads: 1}}); err == nil {
		t.Error("unknown codec accepted")
	}
	e, err := media.NewEncoder(context.Background(), &bytes.Buffer{}, media.EncodeOptions{Width: 64, Height: 64, FPS: 24, Codec: media.H264()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WriteFrame(make([]byte, 10)); err == nil {
		t.Error("short frame accepted")
	}
	if err := e.Close(); err == nil {
		t.Error("an empty encode must fail")
	}
	if _, err := media.Probe(context.Background(), "/nonexistent.mp4", media.ProbeOptions{}); err == nil {
		t.Error("probe of a missing file succeeded")
	}
}
