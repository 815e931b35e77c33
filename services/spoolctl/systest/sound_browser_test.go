package systest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// heard is what sound.mjs heard of one player on the dashboard.
type heard struct {
	Why, Caption, Src, Error, CaptureError   string
	From, To                                 float64 // the video's time, s, listened over
	WallS                                    float64 // how long that took
	Muted                                    bool
	Volume                                   float64
	AudioDecodedBytes, VideoDecodedBytes     int64
	MediaAudioTracks, HLSAudioTracks         int
	CapturedAudioTracks                      int
	SampleRate                               float64
	RMS, At                                  []float64 // what the element played, every 50 ms, and the video's time then
	SourceBuffers, Codecs, HLSErrors         []string
	HLSPlayers, FragsBuffered                int
	MaxRMS, MeanRMS                          float64 `json:"-"`
	hlsCodecsWithAudio, buffersWithAudioMime bool
}

// tally sums up what was heard.
func (h *heard) tally() {
	for _, r := range h.RMS {
		h.MaxRMS = max(h.MaxRMS, r)
		h.MeanRMS += r / float64(len(h.RMS))
	}
	h.hlsCodecsWithAudio = slices.ContainsFunc(h.Codecs, func(c string) bool { return strings.Contains(c, "mp4a") })
	h.buffersWithAudioMime = slices.ContainsFunc(h.SourceBuffers, func(c string) bool { return strings.Contains(c, "mp4a") })
}

func (h heard) String() string {
	return fmt.Sprintf("%s (%s, %s) %.2f..%.2f s in %.2f s: muted %v volume %.1f, decoded %d B audio %d B video, audio tracks: media %d hls %d captured %d, "+
		"RMS max %.3f mean %.3f over %d reads at %.0f Hz, source buffers %q, hls codecs %q, %d fragments buffered, hls errors %q, media error %q, capture %q",
		h.Caption, h.Src, h.Why, h.From, h.To, h.WallS, h.Muted, h.Volume, h.AudioDecodedBytes, h.VideoDecodedBytes, h.MediaAudioTracks,
		h.HLSAudioTracks, h.CapturedAudioTracks, h.MaxRMS, h.MeanRMS, len(h.RMS), h.SampleRate, h.SourceBuffers, h.Codecs,
		h.FragsBuffered, h.HLSErrors, h.Error, h.CaptureError)
}

// TestDashboardPlaysSound: in Debian's headless Chromium the dashboard
// plays a real talking-head job (an uploaded 3 s of speech-like sound and
// an avatar, made by the workers in four segments) with its sound. Its
// live preview, through the bundled hls.js, buffers the AAC that the
// stitcher muxed into the pieces beside the video, and plays it unmuted
// from start to end: what the element plays is the speech, as loud, its
// pauses where they are, across the pieces' seams. Its final MP4 plays
// unmuted and decodes its audio track. A job without audio plays its
// preview to its end with no audio track. The dashboard starts the
// players itself; no page logs an error, no request fails, hls.js reports
// no error. (A finished job's page plays its final MP4: to play the
// preview as while the job runs, the driver hides the job's download_url
// from the page's /status, and nothing else.)
func TestDashboardPlaysSound(t *testing.T) {
	browser := systest.NeedChromium(t)
	sys := systest.Start(t, 0, 2)
	dir := t.TempDir()
	run := time.Now().UnixNano() % 1e9 // the database outlives one run of the test
	talk, silent := fmt.Sprintf("sound-talk-%d", run), fmt.Sprintf("sound-silent-%d", run)

	// 3 s of a 180 Hz tone rising and falling like syllables, with pauses
	// (stereo at 44.1 kHz: intake downmixes and resamples it), and a face.
	voice, face := filepath.Join(dir, "voice.wav"), filepath.Join(dir, "avatar.png")
	expr := "0.8*sin(2*PI*180*t)*(0.55+0.45*sin(2*PI*2.3*t))*gt(sin(2*PI*0.9*t)+0.3\\,0)"
	ffmpegTo(t, voice, "-f", "lavfi", "-i", "aevalsrc="+expr+"|"+expr+":s=44100:d=3", "-c:a", "pcm_s16le")
	ffmpegTo(t, face, "-f", "lavfi", "-i", "color=c=0xd8a888:s=320x240", "-vf",
		"drawbox=x=100:y=80:w=30:h=16:c=0x302020:t=fill,drawbox=x=190:y=80:w=30:h=16:c=0x302020:t=fill", "-frames:v", "1")
	audio, ref := uploadFile(t, sys, "audio/wav", voice), uploadFile(t, sys, "image/png", face)

	// No duration: as long as the audio, 72 frames at 24 fps, in segments
	// of 25 frames overlapping by 5. The silent job is as long, without.
	common := `"prompt":"a presenter","fps":24,"windowFrames":25,"overlapFrames":5,"width":160,"height":120,"steps":2,"seed":5,"pool":"` +
		systest.Pool + `"`
	sys.Submit(t, fmt.Sprintf(`{"id":%q,"model":"ref-talk","audio":%q,"reference":%q,%s}`, talk, audio, ref, common))
	sys.Submit(t, fmt.Sprintf(`{"id":%q,"model":"ref","durationFrames":72,%s}`, silent, common))
	j := sys.WaitSucceeded(t, talk, 3*time.Minute)
	if j.SegmentsTotal < 3 || j.TotalFrames != 72 {
		t.Fatalf("the talking head: %d frames in %d segments, want 72 in several", j.TotalFrames, j.SegmentsTotal)
	}
	sys.WaitSucceeded(t, silent, 3*time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, "sound.mjs", sys.DashboardURL(), talk, silent)
	if err != nil {
		t.Fatalf("the dashboard driver: %v", err)
	}
	var saw struct {
		Errors, FailedRequests                []string
		TalkPreview, SilentPreview, TalkFinal *heard
	}
	if err := json.Unmarshal(out, &saw); err != nil {
		t.Fatalf("the driver's report %q: %v", out, err)
	}
	if len(saw.Errors) > 0 || len(saw.FailedRequests) > 0 || saw.TalkPreview == nil || saw.SilentPreview == nil || saw.TalkFinal == nil {
		t.Fatalf("errors in the page: %q; failed requests: %q", saw.Errors, saw.FailedRequests)
	}
	for _, h := range []*heard{saw.TalkPreview, saw.SilentPreview, saw.TalkFinal} {
		h.tally()
	}
	t.Logf("talking head, preview: %v", saw.TalkPreview)
	t.Logf("silent job, preview: %v", saw.SilentPreview)
	t.Logf("talking head, final: %v", saw.TalkFinal)

	for _, c := range []struct {
		name string
		h    *heard
		hls  bool
	}{{"the preview", saw.TalkPreview, true}, {"the silent preview", saw.SilentPreview, true}, {"the final video", saw.TalkFinal, false}} {
		h := c.h
		// hls.js says so when playback stands still for a while with media
		// buffered ahead: a slow machine, not the media.
		stalls := slices.DeleteFunc(slices.Clone(h.HLSErrors), func(e string) bool { return !stall(e) })
		if errs := slices.DeleteFunc(slices.Clone(h.HLSErrors), stall); h.Error != "" || len(errs) > 0 {
			t.Errorf("%s: media error %q, hls.js errors %q", c.name, h.Error, errs)
		}
		if len(stalls) > 0 {
			t.Logf("%s: playback stalled %d times, %.2f s of video in %.2f s: %q", c.name, len(stalls), h.To-h.From, h.WallS, stalls)
		}
		if h.Why != "ended" || h.From > 0.2 || math.Abs(h.To-3) > 0.05 || h.VideoDecodedBytes == 0 {
			t.Errorf("%s: %s at %.2f..%.2f s (%d video bytes decoded): want it played from the start to its end at 3 s", c.name, h.Why,
				h.From, h.To, h.VideoDecodedBytes)
		}
		if h.Muted || h.Volume == 0 {
			t.Errorf("%s: muted %v, volume %.1f: the dashboard must play its sound", c.name, h.Muted, h.Volume)
		}
		if want := map[bool]string{true: "live preview", false: "final video"}[c.hls]; h.Caption != want || (h.HLSPlayers > 0) != c.hls ||
			(h.Src == "blob") != c.hls {
			t.Errorf("%s: caption %q, %d hls.js players, source %q: want the %s", c.name, h.Caption, h.HLSPlayers, h.Src, want)
		}
	}

	// The talking head's sound: the element finds an audio track and
	// decodes it.
	for _, c := range []struct {
		name string
		h    *heard
	}{{"the preview", saw.TalkPreview}, {"the final video", saw.TalkFinal}} {
		h := c.h
		if h.AudioDecodedBytes == 0 || h.MediaAudioTracks != 1 {
			t.Errorf("%s: %d audio bytes decoded, %d audio tracks in the media: want its sound", c.name, h.AudioDecodedBytes, h.MediaAudioTracks)
		}
	}
	// What the preview plays is the speech, as loud, with its pauses where
	// they are: no piece's sound missing or shifted (its overlap of 5 frames
	// is 0.21 s). The final MP4 comes from MinIO, another origin: a page may
	// not capture what it plays.
	p := saw.TalkPreview
	if p.CapturedAudioTracks != 1 || len(p.RMS) < 25 {
		t.Fatalf("the preview: %d audio tracks captured, %d reads of its sound (capture %q)", p.CapturedAudioTracks, len(p.RMS), p.CaptureError)
	}
	lag, corr, gain := likeVoice(p)
	t.Logf("the preview's sound against the speech: correlation %.3f at a lag of %.0f ms, %.2f times as loud", corr, lag*1000, gain)
	// The capture's reads jitter with the machine's load: 0.92 to 0.94 was
	// measured on a loaded 2-core machine for the right sound.
	if p.MaxRMS < 0.1 || corr < 0.9 || math.Abs(lag) > 0.15 || gain < 0.85 || gain > 1.15 {
		t.Errorf("the preview: RMS up to %.4f, mean %.4f; against the speech: correlation %.3f at %.0f ms, %.2f times as loud: want the speech",
			p.MaxRMS, p.MeanRMS, corr, lag*1000, gain)
	}
	// hls.js found the AAC beside the video in the preview's pieces.
	if !p.hlsCodecsWithAudio || !p.buffersWithAudioMime {
		t.Errorf("the preview: hls.js buffers %q in source buffers %q: want an AAC (mp4a) track", p.Codecs, p.SourceBuffers)
	}

	// The silent job has no audio track anywhere, and decodes no sound.
	if s := saw.SilentPreview; s.AudioDecodedBytes != 0 || s.CapturedAudioTracks != 0 || s.MediaAudioTracks != 0 ||
		s.hlsCodecsWithAudio || s.buffersWithAudioMime || len(s.Codecs) == 0 {
		t.Errorf("the silent preview: %v: want video only", s)
	}
}

// stall is whether an hls.js error is a stall of the playback that it
// recovers from.
func stall(e string) bool {
	return (strings.HasPrefix(e, "mediaError bufferStalledError") || strings.HasPrefix(e, "mediaError bufferNudgeOnStall")) &&
		!strings.Contains(e, "(fatal)")
}

// voiceAt is the uploaded speech at t seconds (each of its channels).
func voiceAt(t float64) float64 {
	if math.Sin(2*math.Pi*0.9*t)+0.3 <= 0 {
		return 0
	}
	return 0.8 * math.Sin(2*math.Pi*180*t) * (0.55 + 0.45*math.Sin(2*math.Pi*2.3*t))
}

// likeVoice compares what the element played with the speech: the RMS of
// the speech over the same windows (the analyser's n samples before each
// read's video time, shifted by a lag: the element's time and its sound
// out are not one clock), at the lag that fits best from -0.2 to 0.4 s.
// The reads of the first 0.15 s are left out: the analyser's window still
// holds what came before the sound. It returns the lag, the correlation
// there, and the played RMS over the speech's.
func likeVoice(h *heard) (lag, corr, gain float64) {
	const n = 2048
	var got, at []float64
	for i, t := range h.At {
		if t >= h.From+0.15 {
			got, at = append(got, h.RMS[i]), append(at, t)
		}
	}
	want := make([]float64, len(got))
	corr = -2
	for l := -0.2; l <= 0.4; l += 0.005 {
		for i, t := range at {
			energy := 0.0
			for k := range n {
				x := voiceAt(t - l - float64(n-k)/h.SampleRate)
				energy += x * x
			}
			want[i] = math.Sqrt(energy / n)
		}
		if c := pearson(got, want); c > corr {
			lag, corr, gain = l, c, sum(got)/sum(want)
		}
	}
	return lag, corr, gain
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// pearson is the correlation of a and b.
func pearson(a, b []float64) float64 {
	ma, mb := sum(a)/float64(len(a)), sum(b)/float64(len(b))
	var ab, aa, bb float64
	for i := range a {
		ab += (a[i] - ma) * (b[i] - mb)
		aa += (a[i] - ma) * (a[i] - ma)
		bb += (b[i] - mb) * (b[i] - mb)
	}
	return ab / math.Sqrt(aa*bb)
}

// ffmpegTo runs ffmpeg with args, writing out.
func ffmpegTo(t *testing.T, out string, args ...string) {
	t.Helper()
	args = append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
}

// uploadFile posts file to POST /uploads, which probes it, and returns the
// upload's id.
func uploadFile(t *testing.T, sys *systest.System, contentType, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	resp := sys.Do(t, "POST", "/uploads", contentType, bytes.NewReader(data))
	defer resp.Body.Close()
	var up struct {
		ID, State string
	}
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || (resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK) {
		t.Fatalf("upload %s: %s %v", file, resp.Status, err)
	}
	return up.ID
}
