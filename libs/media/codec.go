package media

import (
	"fmt"
	"strconv"
)

// Codec fixes every parameter that affects the encoded bytes.
type Codec struct {
	// Name is the ffmpeg encoder: "libx264" by default, "h264_nvenc" on GPU
	// nodes, "libx264rgb" for lossless tests.
	Name string
	// Preset and CRF set speed and quality (libx264 / libx264rgb).
	Preset string
	CRF    int
	// PixFmt is the encoded pixel format.
	PixFmt string
	// Threads is the encoder's thread count. It is fixed, never "auto":
	// x264's output depends on it.
	Threads int
}

// H264 is the default codec of every worker and of the stitcher.
func H264() Codec {
	return Codec{Name: "libx264", Preset: "veryfast", CRF: 20, PixFmt: "yuv420p", Threads: 2}
}

// Lossless is an RGB codec that decodes to exactly the frames given, for
// tests that check pixel arithmetic (crossfades).
func Lossless() Codec {
	return Codec{Name: "libx264rgb", Preset: "ultrafast", CRF: 0, PixFmt: "rgb24", Threads: 2}
}

// args are the ffmpeg output options of the codec. Keyframes are placed only
// where forced (no scene cut, an endless GOP), there are no B-frames (so
// decode order is presentation order and fragments join cleanly), and the
// encoder writes no timestamped or machine-specific metadata.
func (c Codec) args() ([]string, error) {
	if c.Threads < 1 {
		return nil, fmt.Errorf("media: codec %s: threads %d must be ≥ 1", c.Name, c.Threads)
	}
	switch c.Name {
	case "libx264", "libx264rgb":
		return []string{
			"-c:v", c.Name, "-preset", c.Preset, "-crf", strconv.Itoa(c.CRF), "-pix_fmt", c.PixFmt,
			"-threads", strconv.Itoa(c.Threads),
			"-x264-params", "keyint=infinite:min-keyint=1:scenecut=0:bframes=0:open-gop=0:lookahead-threads=1:sliced-threads=0",
		}, nil
	case "h264_nvenc":
		return []string{"-c:v", "h264_nvenc", "-preset", "p4", "-rc", "constqp", "-qp", strconv.Itoa(c.CRF),
			"-pix_fmt", c.PixFmt, "-bf", "0", "-g", "100000", "-no-scenecut", "1", "-forced-idr", "1"}, nil
	}
	return nil, fmt.Errorf("media: unknown codec %q (libx264, libx264rgb or h264_nvenc)", c.Name)
}

// CodecByName is the codec a configuration names: "h264" (or empty) for
// H264, "lossless" for Lossless.
func CodecByName(name string) (Codec, error) {
	switch name {
	case "", "h264":
		return H264(), nil
	case "lossless":
		return Lossless(), nil
	}
	return Codec{}, fmt.Errorf("media: codec %q: want h264 or lossless", name)
}
