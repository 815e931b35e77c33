package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// EncodeOptions describe the frames fed to an Encoder.
type EncodeOptions struct {
	Width, Height int // pixels, even
	FPS           int // frames per second, ≥ 1
	Codec         Codec
	// Keyframes lists frame indices, besides 0, that start a new GOP and so
	// a new fragment (e.g. both ends of an overlap to be crossfaded).
	Keyframes []int
	// KeyframeEvery, when > 0, starts a GOP (and a fragment) every that
	// many frames instead; Keyframes must then be empty.
	KeyframeEvery int
}

// Encoder pipes packed RGB24 frames into ffmpeg and writes a fragmented MP4
// (an init segment followed by one moof+mdat per GOP) to its output.
type Encoder struct {
	opts      EncodeOptions
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	stderr    *bytes.Buffer
	frameSize int
	frames    int
	closed    bool
}

// Timescale is the MP4 track timescale for fps: one frame lasts 1000 ticks.
func Timescale(fps int) int { return fps * 1000 }

// NewEncoder starts ffmpeg writing to out. The caller must Close it.
func NewEncoder(ctx context.Context, out io.Writer, o EncodeOptions) (*Encoder, error) {
	if o.Width < 2 || o.Height < 2 || o.Width%2 != 0 || o.Height%2 != 0 {
		return nil, fmt.Errorf("media: encode size %dx%d: both sides must be even and ≥ 2", o.Width, o.Height)
	}
	if o.FPS < 1 {
		return nil, fmt.Errorf("media: encode fps %d must be ≥ 1", o.FPS)
	}
	codecArgs, err := o.Codec.args()
	if err != nil {
		return nil, err
	}
	bin, err := lookPath("ffmpeg")
	if err != nil {
		return nil, err
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", o.Width, o.Height),
		"-framerate", strconv.Itoa(o.FPS), "-i", "pipe:0", "-an"}
	args = append(args, codecArgs...)
	keys := keyframeExpr(o.Keyframes)
	if o.KeyframeEvery > 0 {
		if len(o.Keyframes) > 0 {
			return nil, errors.New("media: encode: Keyframes and KeyframeEvery are exclusive")
		}
		keys = "expr:eq(mod(n," + strconv.Itoa(o.KeyframeEvery) + "),0)"
	}
	args = append(args, "-force_key_frames", keys)
	if o.Codec.Name != "h264_nvenc" {
		args = append(args, "-forced-idr", "1")
	}
	args = append(args,
		"-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
		"-video_track_timescale", strconv.Itoa(Timescale(o.FPS)),
		"-movflags", "+frag_keyframe+empty_moov+default_base_moof+skip_trailer",
		"-f", "mp4", "pipe:1")
	cmd := exec.CommandContext(ctx, bin, args...)
	e := &Encoder{opts: o, cmd: cmd, stderr: &bytes.Buffer{}, frameSize: o.Width * o.Height * 3}
	cmd.Stdout, cmd.Stderr = out, e.stderr
	if e.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("media: ffmpeg stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("media: start ffmpeg: %w", err)
	}
	return e, nil
}

// WriteFrame sends one packed RGB24 frame (width × height × 3 bytes). The
// slice is not retained.
func (e *Encoder) WriteFrame(rgb []byte) error {
	if e.closed {
		return errors.New("media: write to a closed encoder")
	}
	if len(rgb) != e.frameSize {
		return fmt.Errorf("media: frame of %d bytes, want %d (%dx%d RGB24)", len(rgb), e.frameSize, e.opts.Width, e.opts.Height)
	}
	if _, err := e.stdin.Write(rgb); err != nil {
		return fmt.Errorf("media: write frame %d: %w (%s)", e.frames, err, logTail(e.stderr))
	}
	e.frames++
	return nil
}

// Frames is how many frames were written.
func (e *Encoder) Frames() int { return e.frames }

// Close ends the input, waits for ffmpeg to flush the output, and reports
// its failure with the tail of its log.
func (e *Encoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	cerr := e.stdin.Close()
	if err := e.cmd.Wait(); err != nil {
		return fmt.Errorf("media: ffmpeg: %w (%s)", err, logTail(e.stderr))
	}
	if cerr != nil {
		return fmt.Errorf("media: close ffmpeg stdin: %w", cerr)
	}
	if e.frames == 0 {
		return errors.New("media: no frame was encoded")
	}
	return nil
}

// keyframeExpr forces a keyframe at frame 0 and at each listed index.
func keyframeExpr(at []int) string {
	idx := append([]int{0}, at...)
	slices.Sort(idx)
	idx = slices.Compact(idx)
	terms := make([]string, len(idx))
	for i, n := range idx {
		terms[i] = "eq(n," + strconv.Itoa(n) + ")"
	}
	return "expr:" + strings.Join(terms, "+")
}
