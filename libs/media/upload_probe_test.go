package media_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/realpart"
)

// ffmpegTo runs ffmpeg with args, writing dir/name, and returns its path.
func ffmpegTo(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		realpart.Missing(t, "ffmpeg is not installed; run \"make deps\"")
	}
	out := filepath.Join(dir, name)
	args = append(append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...), out)
	if msg, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, msg)
	}
	return out
}

// writeFile writes data to dir/name and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// testsrc is the lavfi input of a 320×240 test picture at 24 fps.
var testsrc = []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=24"}

// sine is the lavfi input of a 440 Hz tone at 48 kHz.
var sine = []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// pngHeader is a PNG signature and an IHDR chunk of w×h (CRC right), then
// bytes that are no picture at all.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2 // 8-bit RGB
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	_ = binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	b.WriteString(strings.Repeat("not a picture ", 100))
	return b.Bytes()
}

// TestProbeUpload probes media made by ffmpeg, and files that are not, or
// not whole: every field exact, every refusal with its code.
func TestProbeUpload(t *testing.T) {
	dir := t.TempDir()
	video := ffmpegTo(t, dir, "v.mp4", cat(testsrc, sine, []string{"-t", "2", "-ac", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-shortest"})...)
	fast := ffmpegTo(t, dir, "fast.mp4", "-i", video, "-c", "copy", "-movflags", "+faststart")
	silent := ffmpegTo(t, dir, "silent.mp4", cat(testsrc, []string{"-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p"})...)
	webm := ffmpegTo(t, dir, "w.webm", cat(testsrc, []string{"-t", "2", "-c:v", "libvpx-vp9", "-b:v", "200k"})...)
	png := ffmpegTo(t, dir, "i.png", "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1")
	wav := ffmpegTo(t, dir, "a.wav", cat(sine, []string{"-t", "1.5", "-ac", "2"})...)
	m4a := ffmpegTo(t, dir, "a.m4a", cat(sine, []string{"-t", "2", "-ac", "2", "-c:a", "aac"})...)
	images := map[string]string{}
	for _, ext := range []string{"jpg", "gif", "webp", "bmp"} {
		images[ext] = ffmpegTo(t, dir, "i."+ext, "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1")
	}
	gif := ffmpegTo(t, dir, "g.gif", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "1")

	data := readFile(t, video)
	cut := writeFile(t, dir, "cut.mp4", data[:len(data)*2/3]) // its moov is at the end
	fastData := readFile(t, fast)
	fastCut := writeFile(t, dir, "fastcut.mp4", fastData[:len(fastData)*2/3])
	// A fragmented MP4 (a fragment every 6 frames) cut inside a fragment:
	// no index says how long it was.
	frag := ffmpegTo(t, dir, "frag.mp4", cat(testsrc, []string{"-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "6",
		"-movflags", "frag_keyframe+empty_moov"})...)
	fragData := readFile(t, frag)
	fragCut := writeFile(t, dir, "fragcut.mp4", fragData[:len(fragData)*3/4])
	webmData := readFile(t, webm)
	webmCut := writeFile(t, dir, "cut.webm", webmData[:len(webmData)/2])
	// An unknown codec: the sample entry's fourcc patched.
	silentData := readFile(t, silent)
	i := bytes.Index(silentData, []byte("stsd"))
	j := bytes.Index(silentData[i:], []byte("avc1"))
	unknown := bytes.Clone(silentData)
	copy(unknown[i+j:], "zzzz")
	// A known codec whose first frame is garbage.
	garbled := bytes.Clone(silentData)
	m := bytes.Index(garbled, []byte("mdat")) + 4
	for k := m + 40; k < m+3000; k++ {
		garbled[k] = byte(k*7919 + 13)
	}

	type want struct {
		code string // "" for accepted
		p    media.UploadProbe
		msg  string // in the message
	}
	videoProbe := media.UploadProbe{Kind: "video", Format: "mov,mp4,m4a,3gp,3g2,mj2", Codec: "h264", Width: 320, Height: 240, FPS: 24,
		Frames: 48, DurationS: 2, AudioCodec: "aac", SampleRate: 48000, Channels: 2}
	cases := []struct {
		name   string
		input  string
		limits media.UploadLimits
		want   want
	}{
		{"video", video, media.UploadLimits{}, want{p: videoProbe}},
		{"video, faststart", fast, media.UploadLimits{}, want{p: videoProbe}},
		{"video without sound", silent, media.UploadLimits{}, want{p: media.UploadProbe{Kind: "video", Format: videoProbe.Format,
			Codec: "h264", Width: 320, Height: 240, FPS: 24, Frames: 24, DurationS: 1}}},
		{"webm", webm, media.UploadLimits{}, want{p: media.UploadProbe{Kind: "video", Format: "matroska,webm", Codec: "vp9", Width: 320,
			Height: 240, FPS: 24, Frames: 48, DurationS: 2}}},
		{"png", png, media.UploadLimits{}, want{p: media.UploadProbe{Kind: "image", Format: "png_pipe", Codec: "png", Width: 64, Height: 48}}},
		{"jpeg", images["jpg"], media.UploadLimits{}, want{p: media.UploadProbe{Kind: "image", Format: "jpeg_pipe", Codec: "mjpeg", Width: 64, Height: 48}}},
		{"gif", images["gif"], media.UploadLimits{}, want{p: media.UploadProbe{Kind: "image", Format: "gif", Codec: "gif", Width: 64, Height: 48}}},
		{"webp", images["webp"], media.UploadLimits{}, want{p: media.UploadProbe{Kind: "image", Format: "webp_pipe", Codec: "webp", Width: 64, Height: 48}}},
		{"bmp", images["bmp"], media.UploadLimits{}, want{p: media.UploadProbe{Kind: "image", Format: "bmp_pipe", Codec: "bmp", Width: 64, Height: 48}}},
		{"animated gif", gif, media.UploadLimits{}, want{p: media.UploadProbe{Kind: "video", Format: "gif", Codec: "gif", Width: 64, Height: 48,
			FPS: 10, Frames: 10, DurationS: 1}}},
		{"wav", wav, media.UploadLimits{}, want{p: media.UploadProbe{Kind: "audio", Format: "wav", Codec: "pcm_s16le", DurationS: 1.5,
			SampleRate: 48000, Channels: 2}}},
		{"m4a", m4a, media.UploadLimits{}, want{p: media.UploadProbe{Kind: "audio", Format: videoProbe.Format, Codec: "aac", DurationS: 2,
			SampleRate: 48000, Channels: 2}}},

		{"text labelled video", writeFile(t, dir, "notes", []byte("hello, this is a shopping list\neggs\nmilk\n")), media.UploadLimits{},
			want{code: media.UploadNotMedia, msg: "not media"}},
		{"empty", writeFile(t, dir, "empty", nil), media.UploadLimits{}, want{code: media.UploadEmpty, msg: "empty"}},
		{"truncated mp4", cut, media.UploadLimits{}, want{code: media.UploadTruncated, msg: "moov"}},
		{"truncated faststart mp4", fastCut, media.UploadLimits{}, want{code: media.UploadTruncated, msg: "header says 48 frames"}},
		{"truncated fragmented mp4", fragCut, media.UploadLimits{}, want{code: media.UploadTruncated, msg: "partial file"}},
		{"truncated webm", webmCut, media.UploadLimits{}, want{code: media.UploadTruncated, msg: "the file says 2.000 s"}},
		{"unknown codec", writeFile(t, dir, "unknown.mp4", unknown), media.UploadLimits{}, want{code: media.UploadUnsupportedCodec, msg: "zzzz"}},
		{"garbled first frame", writeFile(t, dir, "garbled.mp4", garbled), media.UploadLimits{}, want{code: media.UploadUndecodable, msg: "first frame"}},
		{"video too long", video, media.UploadLimits{MaxDurationS: 1.5}, want{code: media.UploadTooLong, msg: "at most 1.5 s"}},
		{"audio too long", wav, media.UploadLimits{MaxDurationS: 1}, want{code: media.UploadTooLong, msg: "at most 1 s"}},
		{"video frame too large", video, media.UploadLimits{MaxPixels: 320*240 - 1}, want{code: media.UploadTooManyPixels, msg: "320×240"}},
		// Refused from the header alone: what follows it is no picture.
		{"huge png header", writeFile(t, dir, "huge.png", pngHeader(100000, 100000)), media.UploadLimits{},
			want{code: media.UploadTooManyPixels, msg: "100000×100000, 10000000000 pixels: want at most 64000000"}},
	}
	for ext, p := range images {
		cases = append(cases, struct {
			name   string
			input  string
			limits media.UploadLimits
			want   want
		}{ext + " over the limit", p, media.UploadLimits{MaxPixels: 64*48 - 1}, want{code: media.UploadTooManyPixels, msg: "64×48"}})
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := media.ProbeUpload(ctx, c.input, c.limits)
			check := func(got media.UploadProbe, err error) {
				t.Helper()
				if c.want.code == "" {
					if err != nil || got != c.want.p {
						t.Fatalf("probe\n got %+v %v\nwant %+v", got, err, c.want.p)
					}
					return
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the message shows the URL's signature: %v", err)
				}
				ue, ok := media.AsUploadError(err)
				if !ok || ue.Code != c.want.code || !strings.Contains(ue.Message, c.want.msg) {
					t.Fatalf("error %v (%T), want code %s with %q", err, err, c.want.code, c.want.msg)
				}
			}
			check(got, err)
			// The same through a URL, as the gateway probes a presigned GET.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.ServeFile(w, r, c.input)
			}))
			defer srv.Close()
			check(media.ProbeUpload(ctx, srv.URL+"/object?X-Amz-Signature=secret", c.limits))
		})
	}
}

func TestProbeUploadUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := media.ProbeUpload(context.Background(), srv.URL+"/gone?X-Amz-Signature=secret", media.UploadLimits{})
	if _, refused := media.AsUploadError(err); err == nil || refused || strings.Contains(err.Error(), "secret") {
		t.Fatalf("an unreachable input: %v", err)
	}
}
