package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Info is what Probe reads of a video's first video stream.
type Info struct {
	Codec     string
	Width     int
	Height    int
	FPS       float64
	Frames    int     // packets, or decoded frames with CountFrames
	DurationS float64 // container duration in seconds
}

// ProbeOptions tune Probe.
type ProbeOptions struct {
	// CountFrames decodes every frame to count it, instead of counting
	// packets. Slower; it is what a frame-exact check needs.
	CountFrames bool
}

// Probe runs ffprobe on input, a path or a URL.
func Probe(ctx context.Context, input string, o ProbeOptions) (Info, error) {
	bin, err := lookPath("ffprobe")
	if err != nil {
		return Info{}, err
	}
	count, field := "-count_packets", "nb_read_packets"
	if o.CountFrames {
		count, field = "-count_frames", "nb_read_frames"
	}
	out, err := run(ctx, bin, "-v", "error", "-select_streams", "v:0", count,
		"-show_entries", "stream=codec_name,width,height,r_frame_rate,"+field+":format=duration",
		"-of", "json", input)
	if err != nil {
		return Info{}, err
	}
	var doc struct {
		Streams []map[string]any `json:"streams"`
		Format  struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return Info{}, fmt.Errorf("media: ffprobe output: %w", err)
	}
	if len(doc.Streams) == 0 {
		return Info{}, fmt.Errorf("media: probe %s: no video stream", input)
	}
	s := doc.Streams[0]
	info := Info{Codec: str(s["codec_name"])}
	info.Width, _ = strconv.Atoi(str(s["width"]))
	info.Height, _ = strconv.Atoi(str(s["height"]))
	info.Frames, _ = strconv.Atoi(str(s[field]))
	info.DurationS, _ = strconv.ParseFloat(doc.Format.Duration, 64)
	if num, den, ok := strings.Cut(str(s["r_frame_rate"]), "/"); ok {
		n, _ := strconv.ParseFloat(num, 64)
		d, _ := strconv.ParseFloat(den, 64)
		if d != 0 {
			info.FPS = n / d
		}
	}
	return info, nil
}

// FrameMD5 decodes input (a path or URL) and returns the MD5 of every
// decoded frame converted to pixFmt (e.g. "rgb24"; "" keeps the stream's).
func FrameMD5(ctx context.Context, input, pixFmt string) ([]string, error) {
	bin, err := lookPath("ffmpeg")
	if err != nil {
		return nil, err
	}
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-i", input, "-map", "0:v:0"}
	if pixFmt != "" {
		args = append(args, "-pix_fmt", pixFmt)
	}
	out, err := run(ctx, bin, append(args, "-f", "framemd5", "-")...)
	if err != nil {
		return nil, err
	}
	var sums []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ",")
		sums = append(sums, strings.TrimSpace(f[len(f)-1]))
	}
	return sums, sc.Err()
}

func run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	out, _, err := runLogged(ctx, bin, args...)
	return out, err
}

// runLogged is run that also returns what the tool logged on stderr.
func runLogged(ctx context.Context, bin string, args ...string) (stdout, log []byte, err error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 600 {
			msg = "…" + msg[len(msg)-600:]
		}
		return nil, stderr.Bytes(), fmt.Errorf("media: %s: %w: %s", bin, err, msg)
	}
	return out.Bytes(), stderr.Bytes(), nil
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}
