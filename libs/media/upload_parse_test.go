package media

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
)

// Reports of ffprobe (-show_streams -show_format -count_packets -of json),
// cut to the fields ParseUploadProbe reads.
const (
	probeVideo = `{"streams":[{"codec_type":"video","codec_name":"h264","codec_tag_string":"avc1","width":320,"height":240,
		"r_frame_rate":"24/1","avg_frame_rate":"24/1","duration":"2.000000","nb_frames":"48","nb_read_packets":"48","disposition":{"attached_pic":0}},
		{"codec_type":"audio","codec_name":"aac","sample_rate":"48000","channels":2,"duration":"2.000000","nb_frames":"95","nb_read_packets":"95"}],
		"format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"2.000000"}}`
	probePNG = `{"streams":[{"codec_type":"video","codec_name":"png","width":64,"height":48,"r_frame_rate":"25/1","avg_frame_rate":"25/1",
		"nb_read_packets":"1"}],"format":{"format_name":"png_pipe"}}`
	probeMP3Cover = `{"streams":[{"codec_type":"audio","codec_name":"mp3","sample_rate":"44100","channels":1,"duration":"2.037551","nb_read_packets":"78"},
		{"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,"nb_read_packets":"1","disposition":{"attached_pic":1}}],
		"format":{"format_name":"mp3","duration":"2.037551"}}`
	probeTTY = `{"streams":[{"codec_type":"video","codec_name":"ansi","width":640,"height":400,"r_frame_rate":"25/1","nb_read_packets":"1"}],
		"format":{"format_name":"tty"}}`
	probeNTSC = `{"streams":[{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"r_frame_rate":"30000/1001",
		"avg_frame_rate":"30000/1001","duration":"10.010000","nb_frames":"300","nb_read_packets":"300"}],"format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2"}}`
)

func TestParseUploadProbe(t *testing.T) {
	cases := []struct {
		name string
		json string
		lim  UploadLimits
		want UploadProbe
		code string
	}{
		{"video", probeVideo, UploadLimits{}, UploadProbe{Kind: "video", Format: "mov,mp4,m4a,3gp,3g2,mj2", Codec: "h264", Width: 320, Height: 240,
			FPS: 24, Frames: 48, DurationS: 2, AudioCodec: "aac", SampleRate: 48000, Channels: 2}, ""},
		{"ntsc", probeNTSC, UploadLimits{}, UploadProbe{Kind: "video", Format: "mov,mp4,m4a,3gp,3g2,mj2", Codec: "h264", Width: 1920, Height: 1080,
			FPS: 30000.0 / 1001, Frames: 300, DurationS: 10.01}, ""},
		{"png", probePNG, UploadLimits{}, UploadProbe{Kind: "image", Format: "png_pipe", Codec: "png", Width: 64, Height: 48}, ""},
		{"audio with cover art", probeMP3Cover, UploadLimits{}, UploadProbe{Kind: "audio", Format: "mp3", Codec: "mp3", DurationS: 2.037551,
			SampleRate: 44100, Channels: 1}, ""},
		{"text as a picture", probeTTY, UploadLimits{}, UploadProbe{}, UploadNotMedia},
		{"no stream", `{"streams":[{"codec_type":"subtitle","codec_name":"subrip"}],"format":{"format_name":"srt"}}`, UploadLimits{}, UploadProbe{}, UploadNotMedia},
		{"packets short of the header", strings.Replace(probeVideo, `"nb_read_packets":"48"`, `"nb_read_packets":"31"`, 1), UploadLimits{}, UploadProbe{}, UploadTruncated},
		{"audio packets short", strings.Replace(probeVideo, `"nb_read_packets":"95"`, `"nb_read_packets":"50"`, 1), UploadLimits{}, UploadProbe{}, UploadTruncated},
		{"unknown codec", strings.Replace(probeVideo, `"codec_name":"h264",`, ``, 1), UploadLimits{}, UploadProbe{}, UploadUnsupportedCodec},
		{"tiff", strings.NewReplacer(`"png"`, `"tiff"`, "png_pipe", "tiff_pipe").Replace(probePNG), UploadLimits{}, UploadProbe{}, UploadUnsupportedCodec},
		{"pixels", probePNG, UploadLimits{MaxPixels: 64*48 - 1}, UploadProbe{}, UploadTooManyPixels},
		{"too long", probeNTSC, UploadLimits{MaxDurationS: 10}, UploadProbe{}, UploadTooLong},
		{"duration beyond the frames", strings.Replace(probeNTSC, `"duration":"10.010000"`, `"duration":"20.000000"`, 1), UploadLimits{}, UploadProbe{}, UploadTruncated},
		{"no frame rate", strings.NewReplacer(`"r_frame_rate":"24/1"`, `"r_frame_rate":"0/0"`, `"avg_frame_rate":"24/1"`, `"avg_frame_rate":"0/0"`).Replace(probeVideo),
			UploadLimits{}, UploadProbe{}, UploadNotMedia},
	}
	for _, c := range cases {
		got, err := ParseUploadProbe([]byte(c.json), c.lim)
		if c.code == "" {
			if err != nil || got != c.want {
				t.Errorf("%s:\n got %+v %v\nwant %+v", c.name, got, err, c.want)
			}
			continue
		}
		if ue, ok := AsUploadError(err); !ok || ue.Code != c.code {
			t.Errorf("%s: %v, want code %s", c.name, err, c.code)
		}
	}
	if _, err := ParseUploadProbe([]byte(`{"streams":`), UploadLimits{}); err == nil {
		t.Error("malformed JSON accepted")
	} else if _, ok := AsUploadError(err); ok {
		t.Errorf("malformed JSON from ffprobe is the probe's failure, not the file's: %v", err)
	}
}

// FuzzParseUploadProbe: whatever ffprobe says, ParseUploadProbe does not
// panic, and what it accepts is within the limits and whole.
func FuzzParseUploadProbe(f *testing.F) {
	for _, s := range []string{probeVideo, probePNG, probeMP3Cover, probeTTY, probeNTSC, `{}`, `{"streams":[{}]}`} {
		f.Add([]byte(s))
	}
	lim := UploadLimits{MaxPixels: 1 << 24, MaxDurationS: 3600}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseUploadProbe(data, lim)
		if err != nil {
			return
		}
		if what := AcceptedWrong(p, lim); what != "" {
			t.Fatalf("accepted %+v: %s", p, what)
		}
	})
}

// AcceptedWrong says what is wrong with p, a probe ProbeUpload or
// ParseUploadProbe accepted under lim: "" when it is a whole image, video
// or audio file within the limits. For the fuzz targets of either.
func AcceptedWrong(p UploadProbe, lim UploadLimits) string {
	switch p.Kind {
	case KindImage:
		if _, ok := imageCodecs[p.Codec]; !ok {
			return fmt.Sprintf("image codec %q", p.Codec)
		}
	case KindVideo:
		if p.Frames < 1 || !(p.FPS > 0) || math.IsInf(p.FPS, 0) || p.DurationS < 0 || p.DurationS > lim.MaxDurationS {
			return "frames, fps or duration"
		}
	case KindAudio:
		if p.SampleRate <= 0 || p.Channels <= 0 || !(p.DurationS > 0) || p.DurationS > lim.MaxDurationS {
			return "sample rate, channels or duration"
		}
	default:
		return "kind"
	}
	if p.Codec == "" {
		return "no codec"
	}
	if p.Kind != KindAudio && (p.Width <= 0 || p.Height <= 0 || int64(p.Width)*int64(p.Height) > lim.MaxPixels) {
		return "size"
	}
	return ""
}

// FuzzSniffImage: any bytes give a size from their header, or none,
// without a panic; a size is positive.
func FuzzSniffImage(f *testing.F) {
	for _, s := range []string{"\x89PNG\r\n\x1a\n", "\xff\xd8\xff\xe0", "GIF89a\x40\x00\x30\x00", "BM" + strings.Repeat("\x00", 30),
		"RIFF\x00\x00\x00\x00WEBPVP8X" + strings.Repeat("\x01", 20), "RIFF\x00\x00\x00\x00WEBPVP8L" + strings.Repeat("\x2f", 20), ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		format, w, h, empty, err := sniffImage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("an in-memory read failed: %v", err)
		}
		if empty != (len(data) == 0) {
			t.Fatalf("empty %v for %d bytes", empty, len(data))
		}
		if format != "" && (w <= 0 || h <= 0) {
			t.Fatalf("%s of %d×%d", format, w, h)
		}
	})
}
