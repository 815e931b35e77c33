package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/jobspec"
)

// Upload kinds.
const (
	KindImage = "image"
	KindVideo = "video"
	KindAudio = "audio"
)

// UploadProbe is what ProbeUpload finds in an uploaded file. Fields that
// do not apply to its kind are zero: an image has no fps or duration, an
// audio file no frame size.
type UploadProbe struct {
	Kind   string `json:"kind"`   // image, video or audio
	Format string `json:"format"` // ffprobe's format name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
	// Codec is the video stream's (of an image: png, mjpeg, webp, bmp or
	// gif), or an audio file's audio codec.
	Codec     string  `json:"codec"`
	Width     int     `json:"width,omitempty"`
	Height    int     `json:"height,omitempty"`
	FPS       float64 `json:"fps,omitempty"`
	Frames    int64   `json:"frames,omitempty"` // video packets counted
	DurationS float64 `json:"duration_s,omitempty"`
	// AudioCodec is a video's audio codec, "" without sound; an audio
	// file's is Codec.
	AudioCodec string `json:"audio_codec,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"` // Hz
	Channels   int    `json:"channels,omitempty"`
}

// DefaultMaxPixels is the largest image (width × height) UploadLimits
// allows unless told otherwise: 64 Mpx.
const DefaultMaxPixels = 64_000_000

// UploadLimits bound what ProbeUpload accepts.
type UploadLimits struct {
	// MaxPixels bounds an image's or a video frame's width × height;
	// 0 means DefaultMaxPixels. An image is measured from its header.
	MaxPixels int64
	// MaxDurationS bounds a video's or an audio file's duration; 0 means
	// jobspec.MaxDurationS, the longest a job may be.
	MaxDurationS float64
}

func (l UploadLimits) orDefaults() UploadLimits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxDurationS <= 0 {
		l.MaxDurationS = jobspec.MaxDurationS
	}
	return l
}

// Codes of an UploadError: why a file was refused.
const (
	UploadEmpty            = "empty"             // no bytes
	UploadNotMedia         = "not_media"         // no image, video or audio in it
	UploadTruncated        = "truncated"         // cut short: fewer packets than its header says
	UploadTooManyPixels    = "too_many_pixels"   // an image or frame over UploadLimits.MaxPixels
	UploadTooLong          = "too_long"          // over UploadLimits.MaxDurationS
	UploadUnsupportedCodec = "unsupported_codec" // a codec ffmpeg does not know, or an image format not taken
	UploadUndecodable      = "undecodable"       // its first frame (or second of sound) does not decode
)

// UploadError is a file refused for what it holds; Message names the
// problem and what is allowed. Any other error from ProbeUpload is a
// failure of the probe itself (ffprobe missing, the input unreachable).
type UploadError struct {
	Code    string
	Message string
}

func (e *UploadError) Error() string { return e.Message }

func refuse(code, format string, args ...any) error {
	return &UploadError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsUploadError returns the UploadError in err's chain, if any.
func AsUploadError(err error) (*UploadError, bool) {
	var ue *UploadError
	ok := errors.As(err, &ue)
	return ue, ok
}

// imageCodecs are the image formats an upload may be, by ffprobe codec.
var imageCodecs = map[string]string{"png": "png", "mjpeg": "jpeg", "webp": "webp", "bmp": "bmp", "gif": "gif"}

const imageFormats = "png, jpeg, webp, bmp or gif"

// textFormats are demuxers that take any text for a picture of it.
var textFormats = map[string]bool{"tty": true, "bin": true, "xbin": true, "adf": true, "idf": true}

// probeDoc is the part of ffprobe's JSON (-show_streams -show_format
// -count_packets) an upload's probe reads.
type probeDoc struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

type probeStream struct {
	CodecType     string `json:"codec_type"`
	CodecName     string `json:"codec_name"`
	CodecTag      string `json:"codec_tag_string"`
	Width         int    `json:"width"`
	Height        int    `json:"height"`
	RFrameRate    string `json:"r_frame_rate"`
	AvgFrameRate  string `json:"avg_frame_rate"`
	Duration      string `json:"duration"`
	NbFrames      string `json:"nb_frames"`
	NbReadPackets string `json:"nb_read_packets"`
	SampleRate    string `json:"sample_rate"`
	Channels      int    `json:"channels"`
	Disposition   struct {
		AttachedPic int `json:"attached_pic"`
	} `json:"disposition"`
}

// ParseUploadProbe reads ffprobe's JSON of an uploaded file (from
// -show_streams -show_format -count_packets -of json) and decides what it
// is, within limits:
//   - an image: one frame of png, jpeg, webp, bmp or gif in an image
//     format;
//   - a video: its first video stream (cover art aside), with its
//     first audio stream's sound when there is one;
//   - audio: no video stream, its first audio stream.
//
// Content it refuses is an *UploadError: no stream (not_media), fewer
// packets than the header or the duration says (truncated), an unknown
// codec or image format (unsupported_codec), too many pixels, too long.
// JSON it cannot read at all is a plain error.
func ParseUploadProbe(data []byte, limits UploadLimits) (UploadProbe, error) {
	l := limits.orDefaults()
	var doc probeDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return UploadProbe{}, fmt.Errorf("media: ffprobe output: %w", err)
	}
	var v, a *probeStream
	for i := range doc.Streams {
		s := &doc.Streams[i]
		switch {
		case s.CodecType == "video" && s.Disposition.AttachedPic == 0 && v == nil:
			v = s
		case s.CodecType == "audio" && a == nil:
			a = s
		}
	}
	format := doc.Format.FormatName
	p := UploadProbe{Format: format}
	switch {
	case textFormats[format]:
		return p, refuse(UploadNotMedia, "not media: ffprobe reads the file as text (%s); want an image (%s), a video or an audio file", format, imageFormats)
	case v == nil && a == nil:
		return p, refuse(UploadNotMedia, "not media: no video or audio stream in the file (format %q); want an image (%s), a video or an audio file",
			format, imageFormats)
	case v != nil && isImageFormat(format) && count(v.NbReadPackets) <= 1:
		return parseImage(p, v, l)
	case v != nil:
		return parseVideo(p, doc, v, a, l)
	}
	return parseAudio(p, doc, a, l)
}

func parseImage(p UploadProbe, v *probeStream, l UploadLimits) (UploadProbe, error) {
	p.Kind, p.Codec, p.Width, p.Height = KindImage, v.CodecName, v.Width, v.Height
	if _, ok := imageCodecs[v.CodecName]; !ok {
		return p, refuse(UploadUnsupportedCodec, "image format %s: want %s", codecOf(v), imageFormats)
	}
	if count(v.NbReadPackets) < 1 {
		return p, refuse(UploadTruncated, "the %s image holds no picture", imageCodecs[v.CodecName])
	}
	return p, checkSize(p, l)
}

func parseVideo(p UploadProbe, doc probeDoc, v, a *probeStream, l UploadLimits) (UploadProbe, error) {
	p.Kind, p.Codec, p.Width, p.Height = KindVideo, v.CodecName, v.Width, v.Height
	if v.CodecName == "" {
		return p, refuse(UploadUnsupportedCodec, "video codec %s is not one ffmpeg knows: want a codec ffmpeg decodes (h264, hevc, vp9, av1, ...)", codecOf(v))
	}
	if err := checkSize(p, l); err != nil {
		return p, err
	}
	p.Frames = count(v.NbReadPackets)
	if p.Frames < 1 {
		return p, refuse(UploadTruncated, "the %s video stream holds no frame", v.CodecName)
	}
	if n := count(v.NbFrames); n > 0 && n != p.Frames {
		return p, refuse(UploadTruncated, "truncated video: its header says %d frames, %d are there", n, p.Frames)
	}
	p.FPS = rational(v.AvgFrameRate)
	if p.FPS <= 0 {
		p.FPS = rational(v.RFrameRate)
	}
	if p.FPS <= 0 || p.FPS > 1000 {
		return p, refuse(UploadNotMedia, "the %s video stream has no usable frame rate (%q): want 0 < fps ≤ 1000", v.CodecName, v.AvgFrameRate)
	}
	p.DurationS = seconds(v.Duration)
	if p.DurationS <= 0 {
		p.DurationS = seconds(doc.Format.Duration)
	}
	if p.DurationS <= 0 {
		p.DurationS = float64(p.Frames) / p.FPS
	}
	// A file cut short of frames its container still announces: a
	// tenth of the duration and two frames of slack, for timestamps.
	if want := p.DurationS * p.FPS; math.Abs(want-float64(p.Frames)) > max(2, want/10) {
		return p, refuse(UploadTruncated, "truncated video: %d frames at %.3f fps last %.3f s, but the file says %.3f s",
			p.Frames, p.FPS, float64(p.Frames)/p.FPS, p.DurationS)
	}
	if p.DurationS > l.MaxDurationS {
		return p, refuse(UploadTooLong, "the video lasts %.3f s: want at most %g s", p.DurationS, l.MaxDurationS)
	}
	if a != nil {
		if a.CodecName == "" {
			return p, refuse(UploadUnsupportedCodec, "the video's audio codec %s is not one ffmpeg knows: want one it decodes (aac, opus, mp3, ...)", codecOf(a))
		}
		if n := count(a.NbFrames); n > 0 && n != count(a.NbReadPackets) {
			return p, refuse(UploadTruncated, "truncated video: its header says %d audio packets, %d are there", n, count(a.NbReadPackets))
		}
		p.AudioCodec, p.SampleRate, p.Channels = a.CodecName, int(count(a.SampleRate)), a.Channels
		if p.SampleRate <= 0 || p.Channels <= 0 {
			return p, refuse(UploadNotMedia, "the video's %s audio has no sample rate or channels", a.CodecName)
		}
	}
	return p, nil
}

func parseAudio(p UploadProbe, doc probeDoc, a *probeStream, l UploadLimits) (UploadProbe, error) {
	p.Kind, p.Codec = KindAudio, a.CodecName
	if a.CodecName == "" {
		return p, refuse(UploadUnsupportedCodec, "audio codec %s is not one ffmpeg knows: want a codec ffmpeg decodes (aac, opus, mp3, flac, pcm, ...)", codecOf(a))
	}
	p.SampleRate, p.Channels = int(count(a.SampleRate)), a.Channels
	if p.SampleRate <= 0 || p.Channels <= 0 {
		return p, refuse(UploadNotMedia, "the %s audio stream has no sample rate or channels", a.CodecName)
	}
	if count(a.NbReadPackets) < 1 {
		return p, refuse(UploadTruncated, "the %s audio stream holds no packet", a.CodecName)
	}
	if n := count(a.NbFrames); n > 0 && n != count(a.NbReadPackets) {
		return p, refuse(UploadTruncated, "truncated audio: its header says %d packets, %d are there", n, count(a.NbReadPackets))
	}
	p.DurationS = seconds(a.Duration)
	if p.DurationS <= 0 {
		p.DurationS = seconds(doc.Format.Duration)
	}
	if p.DurationS <= 0 {
		return p, refuse(UploadNotMedia, "the %s audio stream has no duration", a.CodecName)
	}
	if p.DurationS > l.MaxDurationS {
		return p, refuse(UploadTooLong, "the audio lasts %.3f s: want at most %g s", p.DurationS, l.MaxDurationS)
	}
	return p, nil
}

// checkSize checks an image's or a video frame's size.
func checkSize(p UploadProbe, l UploadLimits) error {
	if p.Width <= 0 || p.Height <= 0 {
		return refuse(UploadNotMedia, "the %s %s has no frame size", p.Codec, p.Kind)
	}
	if px := int64(p.Width) * int64(p.Height); px > l.MaxPixels {
		return tooManyPixels(p.Kind, p.Width, p.Height, l.MaxPixels)
	}
	return nil
}

func tooManyPixels(kind string, w, h int, limit int64) error {
	return refuse(UploadTooManyPixels, "the %s is %d×%d, %d pixels: want at most %d (width × height; SPOOL_GATEWAY_UPLOAD_MAX_PIXELS)",
		kind, w, h, int64(w)*int64(h), limit)
}

// isImageFormat reports whether an ffprobe format name is one of the
// demuxers of still images.
func isImageFormat(format string) bool {
	for _, f := range strings.Split(format, ",") {
		if f == "image2" || f == "image2pipe" || f == "gif" || strings.HasSuffix(f, "_pipe") {
			return true
		}
	}
	return false
}

// codecOf names a stream's codec for a message: its name, or its tag
// when ffmpeg does not know it.
func codecOf(s *probeStream) string {
	if s.CodecName != "" {
		return s.CodecName
	}
	return fmt.Sprintf("%q (tag %q)", "unknown", s.CodecTag)
}

// count parses a non-negative integer of ffprobe's, 0 for none.
func count(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// seconds parses a duration of ffprobe's, 0 for none or nonsense.
func seconds(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0
	}
	return f
}

// rational parses "num/den" (or a plain number), 0 for none or nonsense.
func rational(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		return seconds(s)
	}
	n, d := seconds(num), seconds(den)
	if d == 0 {
		return 0
	}
	return n / d
}

// ProbeUpload decides what the uploaded file input (a path, or a URL
// ffmpeg can read, such as a presigned GET) is: ParseUploadProbe of
// ffprobe's report, after an image's size is read from its header (a
// picture over the limit is never decoded), and before its first frame,
// or first second of sound, is decoded with ffmpeg. A file refused for
// its content is an *UploadError.
func ProbeUpload(ctx context.Context, input string, limits UploadLimits) (UploadProbe, error) {
	l := limits.orDefaults()
	probe, err := lookPath("ffprobe")
	if err != nil {
		return UploadProbe{}, err
	}
	ffmpeg, err := lookPath("ffmpeg")
	if err != nil {
		return UploadProbe{}, err
	}
	head, err := openHead(ctx, input)
	if err != nil {
		return UploadProbe{}, err
	}
	format, w, h, empty, err := sniffImage(head)
	_ = head.Close()
	switch {
	case err != nil:
		return UploadProbe{}, err
	case empty:
		return UploadProbe{}, refuse(UploadEmpty, "the file is empty: want an image (%s), a video or an audio file", imageFormats)
	case format != "" && int64(w)*int64(h) > l.MaxPixels:
		return UploadProbe{Kind: KindImage, Codec: format, Width: w, Height: h}, tooManyPixels("image", w, h, l.MaxPixels)
	}
	out, log, err := runLogged(ctx, probe, "-hide_banner", "-v", "warning", "-show_streams", "-show_format", "-count_packets", "-of", "json", input)
	if err != nil {
		return UploadProbe{}, probeFailure(ctx, input, err)
	}
	p, err := ParseUploadProbe(out, l)
	if err != nil {
		return p, err
	}
	// A file cut inside its media data (a fragmented MP4 has no index to
	// tell) is read to its end by -count_packets, and the demuxer says so.
	if bytes.Contains(log, []byte("partial file")) || bytes.Contains(log, []byte("Packet corrupt")) {
		return p, refuse(UploadTruncated, "truncated: the file ends inside its media data (ffprobe: partial file, packet corrupt); %d packets read", p.Frames)
	}
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", input}
	switch p.Kind {
	case KindAudio:
		args = append(args, "-map", "0:a:0", "-t", "1")
	default:
		args = append(args, "-map", "0:v:0", "-map", "0:a:0?", "-frames:v", "1", "-t", "1")
	}
	if _, err := run(ctx, ffmpeg, append(args, "-f", "null", "-")...); err != nil {
		if ctx.Err() != nil {
			return p, fmt.Errorf("media: decode %s: %w", p.Kind, ctx.Err())
		}
		what := "first frame"
		if p.Kind == KindAudio {
			what = "first second"
		}
		return p, refuse(UploadUndecodable, "the %s %s does not decode (%s): want a file ffmpeg decodes", p.Codec, what, ffmpegMessage(err, input))
	}
	return p, nil
}

// probeFailure turns ffprobe's failure into an UploadError when it is
// about the file's content, and leaves it as it is when the input could
// not be read (or ctx ended).
func probeFailure(ctx context.Context, input string, err error) error {
	all, msg := err.Error(), ffmpegMessage(err, input)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("media: probe: %w", ctx.Err())
	case strings.Contains(all, "moov atom not found"):
		return refuse(UploadTruncated, "truncated MP4: its index (moov box) is missing (%s)", msg)
	case strings.Contains(all, "Server returned"), strings.Contains(all, "Connection refused"), strings.Contains(all, "Connection timed out"),
		strings.Contains(all, "No such file or directory"):
		return fmt.Errorf("media: probe: %s", msg)
	}
	return refuse(UploadNotMedia, "not media: ffprobe cannot read it (%s); want an image (%s), a video or an audio file", msg, imageFormats)
}

// ffmpegMessage is the last line ffmpeg or ffprobe wrote to stderr, with
// the input named "the file": a presigned URL's signature stays out.
func ffmpegMessage(err error, input string) string {
	msg := strings.ReplaceAll(err.Error(), input, "the file")
	if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = msg[i+1:]
	}
	if _, rest, ok := strings.Cut(msg, "exit status "); ok {
		if _, tail, ok := strings.Cut(rest, ": "); ok {
			msg = tail
		}
	}
	return strings.TrimSpace(msg)
}
