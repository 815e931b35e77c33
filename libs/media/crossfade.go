package media

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
)

// Crossfade writes into dst frame j (0-based) of an overlap of n frames in
// which a (the earlier segment) fades into b (the later): a linear blend
// whose weight of b is (j+1)/(n+1), in integers and rounded half up, so
// that every implementation gives the same bytes:
//
//	dst = (a·(n−j) + b·(j+1) + (n+1)/2) / (n+1)
//
// a, b and dst are packed RGB24 frames of one size.
func Crossfade(dst, a, b []byte, j, n int) error {
	if len(a) != len(b) || len(dst) != len(a) || j < 0 || j >= n {
		return fmt.Errorf("media: crossfade frame %d of %d: frames of %d, %d and %d bytes", j, n, len(a), len(b), len(dst))
	}
	wa, wb, d := uint32(n-j), uint32(j+1), uint32(n+1)
	for i := range a {
		dst[i] = byte((uint32(a[i])*wa + uint32(b[i])*wb + d/2) / d)
	}
	return nil
}

// DecodeRGB decodes an MP4 (an init segment and fragments) to packed RGB24
// frames of width × height, in presentation order.
func DecodeRGB(ctx context.Context, mp4 []byte, width, height int) ([][]byte, error) {
	bin, err := lookPath("ffmpeg")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", "pipe:0",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-vsync", "passthrough", "pipe:1")
	cmd.Stdin = bytes.NewReader(mp4)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("media: decode: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("media: decode: start ffmpeg: %w", err)
	}
	size := width * height * 3
	var frames [][]byte
	for {
		f := make([]byte, size)
		if _, err := io.ReadFull(out, f); err != nil {
			if err == io.EOF {
				break
			}
			_ = cmd.Wait()
			return nil, fmt.Errorf("media: decode: a partial frame (%v): %s", err, stderr.String())
		}
		frames = append(frames, f)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("media: decode: ffmpeg: %w (%s)", err, stderr.String())
	}
	return frames, nil
}
