package media_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/media"
)

// probeBound is how long FuzzProbeUpload lets one probe of a few
// kilobytes take before it calls it a hang: the gateway bounds a probe
// with SPOOL_GATEWAY_UPLOAD_PROBE_TIMEOUT, and a file must never reach it
// by its content alone.
const probeBound = 30 * time.Second

// FuzzProbeUpload: any bytes uploaded are probed as the gateway probes an
// upload (media.ProbeUpload: the image header read in Go, then ffprobe and
// ffmpeg) without a panic and well within a bound, and are either refused
// for what they hold (an *UploadError, a 400 at the gateway: never another
// error, which would be a 503 for the client's bytes) or accepted as an
// image, a video or an audio file within the limits. The seeds are small
// real files of each kind ffmpeg makes.
func FuzzProbeUpload(f *testing.F) {
	dir := f.TempDir()
	tiny := []string{"-f", "lavfi", "-i", "testsrc=size=16x16:rate=24"}
	tone := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000"}
	for _, s := range []struct {
		name string
		args []string
	}{
		{"i.png", cat(tiny, []string{"-frames:v", "1"})},
		{"i.jpg", cat(tiny, []string{"-frames:v", "1"})},
		{"i.gif", cat(tiny, []string{"-frames:v", "1"})},
		{"i.bmp", cat(tiny, []string{"-frames:v", "1"})},
		{"v.mp4", cat(tiny, tone, []string{"-t", "0.125", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"})},
		{"f.mp4", cat(tiny, []string{"-t", "0.125", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "2", "-movflags", "frag_keyframe+empty_moov"})},
		{"a.wav", cat(tone, []string{"-t", "0.05"})},
	} {
		f.Add(readFile(f, ffmpegTo(f, dir, s.name, s.args...)))
	}
	f.Add([]byte{})
	f.Add(pngHeader(1<<20, 1<<20))
	lim := media.UploadLimits{MaxPixels: media.DefaultMaxPixels, MaxDurationS: 86400}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(t.TempDir(), "upload")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeBound)
		defer cancel()
		start := time.Now()
		p, err := media.ProbeUpload(ctx, file, lim)
		if took := time.Since(start); ctx.Err() != nil || took > probeBound {
			t.Fatalf("probing %d bytes took %s: %v", len(data), took, err)
		}
		if err != nil {
			if _, ok := media.AsUploadError(err); !ok {
				t.Fatalf("%d bytes refused, not for what they hold: %v", len(data), err)
			}
			return
		}
		if what := media.AcceptedWrong(p, lim); what != "" {
			t.Fatalf("accepted %+v: %s", p, what)
		}
	})
}
