package media

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
)

// Fit says how a picture of another size or shape is fitted to a frame.
type Fit int

const (
	// FitCrop scales to cover the frame, keeping the aspect ratio, and
	// crops the excess equally from both sides.
	FitCrop Fit = iota
	// FitPad scales to fit inside the frame, keeping the aspect ratio, and
	// pads equally on both sides with black.
	FitPad
	// FitScale scales each side to the frame's, changing the aspect ratio.
	FitScale
)

// String names the fit as the job spec does ("crop", "pad", "scale").
func (f Fit) String() string {
	switch f {
	case FitCrop:
		return "crop"
	case FitPad:
		return "pad"
	case FitScale:
		return "scale"
	}
	return "fit(" + strconv.Itoa(int(f)) + ")"
}

// IntakeOptions describe what Intake makes of an input image or video.
type IntakeOptions struct {
	// Width and Height are the job's frame, pixels, even.
	Width, Height int
	// FPS is the job's frame rate; a video is resampled to it: output
	// frame n shows the input frame on screen at n/FPS s (ffmpeg's fps
	// filter, rounding to the nearest). 0 for an image.
	FPS int
	// Fit fits each frame to Width×Height.
	Fit Fit
	// Image reads only the first frame (an image upload).
	Image bool
	// Keep is how many of the last frames Intake returns (IntakeResult.Last).
	Keep int
	// MaxFrames bounds the frames read; more is an error. 0: no bound.
	MaxFrames int64
	// Frames, when not nil, receives every frame, in order, as packed
	// RGB24 of Width×Height, as it is decoded (a talking-head model's
	// reference frames): a video's after fitting and resampling, an
	// image's one frame.
	Frames io.Writer
	// Encode, when not nil, receives every frame re-encoded with Codec as
	// a fragmented MP4 whose fragments hold at most FragmentFrames frames
	// each (a keyframe starts each), decoding from frame 0.
	Encode         io.Writer
	Codec          Codec
	FragmentFrames int
}

// IntakeResult is what Intake found.
type IntakeResult struct {
	// Frames is how many frames the input gave after fitting and
	// resampling.
	Frames int64
	// Last holds the last min(Keep, Frames) frames, packed RGB24 of
	// Width×Height, oldest first.
	Last []byte
}

// ErrIntake is wrapped by every error about the input itself (it cannot
// be decoded, has no frame, or has too many).
var ErrIntake = errors.New("media: intake")

// FitFilter is the ffmpeg filter chain that fits a picture to w×h by fit,
// in bicubic scaling, square pixels.
func FitFilter(w, h int, fit Fit) (string, error) {
	size := strconv.Itoa(w) + ":" + strconv.Itoa(h)
	switch fit {
	case FitCrop:
		return "scale=" + size + ":force_original_aspect_ratio=increase:flags=bicubic,crop=" + size + ",setsar=1", nil
	case FitPad:
		return "scale=" + size + ":force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic," +
			"pad=" + size + ":(ow-iw)/2:(oh-ih)/2:color=black,setsar=1", nil
	case FitScale:
		return "scale=" + size + ":flags=bicubic,setsar=1", nil
	}
	return "", fmt.Errorf("media: fit %d: want crop, pad or scale", int(fit))
}

// Intake decodes input (a path or a URL ffmpeg can read), fits every frame
// to the job's frame, resamples a video to the job's fps, and returns the
// frame count and the last Keep frames; with o.Frames it also streams every
// frame, and with o.Encode it writes them re-encoded with the workers' codec. ffmpeg runs on one thread with
// bit-exact flags, so the same input gives the same bytes on any machine:
// the oracle (render --local) and the distributed system agree.
func Intake(ctx context.Context, input string, o IntakeOptions) (IntakeResult, error) {
	if o.Width < 2 || o.Height < 2 || o.Width%2 != 0 || o.Height%2 != 0 {
		return IntakeResult{}, fmt.Errorf("media: intake size %dx%d: both sides must be even and ≥ 2", o.Width, o.Height)
	}
	if !o.Image && o.FPS < 1 {
		return IntakeResult{}, fmt.Errorf("media: intake of a video: fps %d must be ≥ 1", o.FPS)
	}
	if o.Keep < 0 {
		return IntakeResult{}, fmt.Errorf("media: intake: keep %d must be ≥ 0", o.Keep)
	}
	filter, err := FitFilter(o.Width, o.Height, o.Fit)
	if err != nil {
		return IntakeResult{}, err
	}
	if !o.Image {
		filter += ",fps=" + strconv.Itoa(o.FPS)
	}
	bin, err := lookPath("ffmpeg")
	if err != nil {
		return IntakeResult{}, err
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-threads", "1", "-i", input,
		"-map", "0:v:0", "-an", "-sn", "-dn", "-filter_threads", "1", "-vf", filter, "-fflags", "+bitexact", "-flags", "+bitexact"}
	if o.Image {
		args = append(args, "-frames:v", "1")
	}
	args = append(args, "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return IntakeResult{}, fmt.Errorf("media: ffmpeg stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return IntakeResult{}, fmt.Errorf("media: start ffmpeg: %w", err)
	}
	res, readErr := readIntake(ctx, bufio.NewReaderSize(stdout, 1<<20), o)
	if readErr != nil {
		cancel()
	}
	waitErr := cmd.Wait()
	switch {
	case readErr != nil:
		return IntakeResult{}, readErr
	case waitErr != nil:
		return IntakeResult{}, fmt.Errorf("%w: ffmpeg cannot decode the input: %s", ErrIntake, logTail(stderr))
	case res.Frames == 0:
		return IntakeResult{}, fmt.Errorf("%w: the input has no video frame", ErrIntake)
	}
	return res, nil
}

// readIntake reads the frames ffmpeg writes, keeps the last o.Keep in a
// ring and feeds the encoder.
func readIntake(ctx context.Context, r io.Reader, o IntakeOptions) (IntakeResult, error) {
	size := o.Width * o.Height * 3
	ring := make([]byte, size*o.Keep)
	var enc *Encoder
	if o.Encode != nil {
		if o.FragmentFrames < 1 {
			return IntakeResult{}, fmt.Errorf("media: intake: fragment frames %d must be ≥ 1", o.FragmentFrames)
		}
		var err error
		enc, err = NewEncoder(ctx, o.Encode, EncodeOptions{Width: o.Width, Height: o.Height, FPS: max(o.FPS, 1), Codec: o.Codec,
			KeyframeEvery: o.FragmentFrames})
		if err != nil {
			return IntakeResult{}, err
		}
		defer func() { _ = enc.Close() }()
	}
	frame := make([]byte, size)
	var n int64
	for {
		if _, err := io.ReadFull(r, frame); err == io.EOF {
			break
		} else if err != nil {
			return IntakeResult{}, fmt.Errorf("%w: frame %d is cut short: %w", ErrIntake, n, err)
		}
		if o.MaxFrames > 0 && n >= o.MaxFrames {
			return IntakeResult{}, fmt.Errorf("%w: more than %d frames at %d fps", ErrIntake, o.MaxFrames, o.FPS)
		}
		if o.Keep > 0 {
			copy(ring[int(n%int64(o.Keep))*size:], frame)
		}
		if o.Frames != nil {
			if _, err := o.Frames.Write(frame); err != nil {
				return IntakeResult{}, fmt.Errorf("media: intake: write frame %d: %w", n, err)
			}
		}
		if enc != nil {
			if err := enc.WriteFrame(frame); err != nil {
				return IntakeResult{}, err
			}
		}
		n++
	}
	if enc != nil && n > 0 {
		if err := enc.Close(); err != nil {
			return IntakeResult{}, err
		}
	}
	keep := int(min(int64(o.Keep), n))
	last := make([]byte, 0, keep*size)
	for i := n - int64(keep); i < n; i++ {
		at := int(i%int64(o.Keep)) * size
		last = append(last, ring[at:at+size]...)
	}
	return IntakeResult{Frames: n, Last: last}, nil
}

func logTail(b *bytes.Buffer) string {
	s := strings.TrimSpace(b.String())
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	if s == "" {
		return "no output from ffmpeg"
	}
	return s
}
