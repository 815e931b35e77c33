package media_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spoolvideo/spool/libs/media"
)

// ffmpegMake runs ffmpeg with args to make a test input in dir.
func ffmpegMake(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	full := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)
	if b, err := exec.Command("ffmpeg", append(full, out)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	return out
}

// TestIntakeVideo: a 30 fps video resampled to 24 fps gives 24 frames a
// second; the last frames kept are the last frames of the whole decode; the
// re-encoding decodes to as many frames, in fragments of at most the asked
// size; and all of it is the same bytes on every run.
func TestIntakeVideo(t *testing.T) {
	dir := t.TempDir()
	in := ffmpegMake(t, dir, "in.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p")
	ctx := context.Background()
	var all bytes.Buffer
	o := media.IntakeOptions{Width: 128, Height: 64, FPS: 24, Fit: media.FitCrop, Keep: 200}
	full, err := media.Intake(ctx, in, o)
	if err != nil {
		t.Fatal(err)
	}
	if full.Frames != 48 || len(full.Last) != 48*128*64*3 {
		t.Fatalf("got %d frames (%d bytes kept), want 48", full.Frames, len(full.Last))
	}
	all.Write(full.Last)
	var enc bytes.Buffer
	o.Keep, o.Encode, o.Codec, o.FragmentFrames = 5, &enc, media.H264(), 12
	got, err := media.Intake(ctx, in, o)
	if err != nil {
		t.Fatal(err)
	}
	if got.Frames != 48 || !bytes.Equal(got.Last, all.Bytes()[43*128*64*3:]) {
		t.Fatalf("kept frames are not the last 5 of the 48")
	}
	_, frags, err := media.Fragments(enc.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, f := range frags {
		if f.Frames > 12 || f.Start != int64(total) {
			t.Fatalf("fragment %d: %d frames from %d, want ≤ 12 from %d", i, f.Frames, f.Start, total)
		}
		total += f.Frames
	}
	if total != 48 || len(frags) != 4 {
		t.Fatalf("%d fragments of %d frames, want 4 of 48", len(frags), total)
	}
	var again bytes.Buffer
	o.Encode = &again
	if _, err := media.Intake(ctx, in, o); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc.Bytes(), again.Bytes()) {
		t.Fatal("the re-encoding differs between two runs")
	}
}

// TestIntakeFits: an image 4:3 fitted into a 2:1 frame: pad leaves black
// bars left and right, crop and scale fill the frame.
func TestIntakeFits(t *testing.T) {
	dir := t.TempDir()
	in := ffmpegMake(t, dir, "in.png", "-f", "lavfi", "-i", "color=c=white:size=400x300", "-frames:v", "1")
	w, h := 128, 64
	px := func(rgb []byte, x, y int) byte { return rgb[(y*w+x)*3] }
	for _, c := range []struct {
		fit        media.Fit
		edge, mid  byte
		edgeIsDark bool
	}{{media.FitPad, 0, 255, true}, {media.FitCrop, 255, 255, false}, {media.FitScale, 255, 255, false}} {
		r, err := media.Intake(context.Background(), in, media.IntakeOptions{Width: w, Height: h, Fit: c.fit, Image: true, Keep: 1})
		if err != nil {
			t.Fatalf("%s: %v", c.fit, err)
		}
		if r.Frames != 1 || len(r.Last) != w*h*3 {
			t.Fatalf("%s: %d frames", c.fit, r.Frames)
		}
		edge, mid := px(r.Last, 2, 32), px(r.Last, 64, 32)
		if (edge < 16) != c.edgeIsDark || mid < 235 {
			t.Errorf("%s: edge %d, middle %d", c.fit, edge, mid)
		}
	}
}

// TestIntakeRefuses: a file that is not media, and more frames than allowed.
func TestIntakeRefuses(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "x.mp4")
	if err := os.WriteFile(txt, []byte("not a video at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := media.Intake(context.Background(), txt, media.IntakeOptions{Width: 64, Height: 64, FPS: 24}); !errors.Is(err, media.ErrIntake) {
		t.Errorf("text file: %v, want ErrIntake", err)
	}
	in := ffmpegMake(t, dir, "in.mp4", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=24:duration=1", "-c:v", "libx264")
	if _, err := media.Intake(context.Background(), in, media.IntakeOptions{Width: 64, Height: 64, FPS: 24, MaxFrames: 10}); !errors.Is(err, media.ErrIntake) {
		t.Errorf("24 frames with a bound of 10: %v, want ErrIntake", err)
	}
	if _, err := media.FitFilter(64, 64, media.Fit(9)); err == nil {
		t.Error("fit 9 accepted")
	}
}

// TestIntakeFramesWriter: the Frames writer gets every frame of a video,
// the same bytes as the frames kept, and the one frame of an image; the
// re-encoding alongside it is unchanged.
func TestIntakeFramesWriter(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	vid := ffmpegMake(t, dir, "in.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p")
	o := media.IntakeOptions{Width: 64, Height: 48, FPS: 24, Fit: media.FitCrop, Keep: 100, Codec: media.H264(), FragmentFrames: 12}
	var plain, enc bytes.Buffer
	o.Encode = &plain
	want, err := media.Intake(ctx, vid, o)
	if err != nil {
		t.Fatal(err)
	}
	var frames bytes.Buffer
	o.Encode, o.Frames = &enc, &frames
	got, err := media.Intake(ctx, vid, o)
	if err != nil {
		t.Fatal(err)
	}
	if want.Frames != 24 || got.Frames != 24 || !bytes.Equal(frames.Bytes(), want.Last) || !bytes.Equal(got.Last, want.Last) {
		t.Fatalf("%d frames, %d bytes written: want the 24 frames kept, %d bytes", got.Frames, frames.Len(), len(want.Last))
	}
	if !bytes.Equal(plain.Bytes(), enc.Bytes()) {
		t.Fatal("the re-encoding differs when frames are also written")
	}
	img := ffmpegMake(t, dir, "in.png", "-f", "lavfi", "-i", "testsrc=size=100x80", "-frames:v", "1")
	frames.Reset()
	r, err := media.Intake(ctx, img, media.IntakeOptions{Width: 64, Height: 48, Fit: media.FitPad, Image: true, Keep: 1, Frames: &frames})
	if err != nil {
		t.Fatal(err)
	}
	if r.Frames != 1 || frames.Len() != 64*48*3 || !bytes.Equal(frames.Bytes(), r.Last) {
		t.Fatalf("image: %d frames, %d bytes written, want 1 frame of %d", r.Frames, frames.Len(), 64*48*3)
	}
}
