package render_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/plan"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/spoolctl/render"
)

// ffmpeg runs ffmpeg with args, quietly, and fails the test on an error.
func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	if b, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
}

// speech makes a speech-like track of seconds s with ffmpeg: a 180 Hz tone
// whose loudness rises and falls like syllables, with pauses, stereo at
// 44.1 kHz (so intake downmixes and resamples it).
func speech(t *testing.T, dir string, s float64, name string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	expr := "0.8*sin(2*PI*180*t)*(0.55+0.45*sin(2*PI*2.3*t))*gt(sin(2*PI*0.9*t)+0.3\\,0)"
	ffmpeg(t, "-f", "lavfi", "-i", "aevalsrc="+expr+"|"+expr+":s=44100:d="+strconv.FormatFloat(s, 'f', 3, 64), "-c:a", "pcm_s16le", f)
	return f
}

// avatar makes a flat skin-coloured 320x240 face with eyes: a mouth drawn
// on it shows as darkness in the mouth box.
func avatar(t *testing.T, dir string) string {
	t.Helper()
	f := filepath.Join(dir, "avatar.png")
	ffmpeg(t, "-f", "lavfi", "-i", "color=c=0xd8a888:s=320x240", "-vf",
		"drawbox=x=100:y=80:w=30:h=16:c=0x302020:t=fill,drawbox=x=190:y=80:w=30:h=16:c=0x302020:t=fill", "-frames:v", "1", f)
	return f
}

// rawFrames decodes a video's frames as RGB24 of w×h.
func rawFrames(t *testing.T, file string, w, h int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", file, "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	size := w * h * 3
	var frames [][]byte
	for off := 0; off+size <= len(out); off += size {
		frames = append(frames, out[off:off+size])
	}
	return frames
}

// pcm decodes a file's first audio stream to mono float32 at rate.
func pcm(t *testing.T, file string, rate int) []float32 {
	t.Helper()
	return decodeAudio(t, "-i", file, "-ac", "1", "-ar", strconv.Itoa(rate))
}

// mouthDarkness is, per frame, how much darker than the avatar the mouth
// box is: the mouth the ref talking head draws opens there.
func mouthDarkness(frames [][]byte, w, h int) []float64 {
	out := make([]float64, len(frames))
	for i, f := range frames {
		var sum float64
		n := 0
		for y := int(0.64 * float64(h)); y < int(0.76*float64(h)); y++ {
			for x := int(0.40 * float64(w)); x < int(0.60*float64(w)); x++ {
				p := f[(y*w+x)*3:]
				sum += 255 - (0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2]))
				n++
			}
		}
		out[i] = sum / float64(n)
	}
	return out
}

// openings is, per frame of a video at fps, the loudness of the frame's
// own samples (RMS in dB, mapped -50..-10 dBFS to 0..1): what the mouth
// should show.
func openings(samples []float32, rate, fps, frames int) []float64 {
	out := make([]float64, frames)
	for f := range frames {
		lo, hi := plan.Samples(int64(f), int64(f+1), fps, rate)
		var sum float64
		n := 0
		for s := lo; s < hi && s < int64(len(samples)); s++ {
			sum += float64(samples[s]) * float64(samples[s])
			n++
		}
		rms := math.Sqrt(sum / float64(max(n, 1)))
		out[f] = math.Min(1, math.Max(0, (20*math.Log10(rms+1e-9)+50)/40))
	}
	return out
}

// pearson is the correlation of a and b at lag: a[i] against b[i+lag].
func pearson(a, b []float64, lag int) float64 {
	var xs, ys []float64
	for i := range a {
		if j := i + lag; j >= 0 && j < len(b) {
			xs, ys = append(xs, a[i]), append(ys, b[j])
		}
	}
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	mx, my := mean(xs), mean(ys)
	var sxy, sxx, syy float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
		syy += (ys[i] - my) * (ys[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy+1e-12)
}

// streamSpan is a stream of a file as it plays: from ffprobe's start
// time, for as long as it decodes (the video's frames, the audio's
// samples after the encoder's priming).
type streamSpan struct{ start, end float64 }

func spans(t *testing.T, file string) map[string]streamSpan {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time,r_frame_rate", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p struct {
		Streams []struct {
			Type  string `json:"codec_type"`
			Start string `json:"start_time"`
			Rate  string `json:"r_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	res := map[string]streamSpan{}
	for _, s := range p.Streams {
		start, _ := strconv.ParseFloat(s.Start, 64)
		var length float64
		switch s.Type {
		case "audio":
			length = float64(len(pcm(t, file, 48000))) / 48000
		case "video":
			num, den, _ := strings.Cut(s.Rate, "/")
			n, _ := strconv.ParseFloat(num, 64)
			d, _ := strconv.ParseFloat(den, 64)
			out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries", "stream=nb_read_packets",
				"-of", "csv=p=0", file).Output()
			if err != nil {
				t.Fatal(err)
			}
			frames, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			length = frames * d / n
		}
		res[s.Type] = streamSpan{start: start, end: start + length}
	}
	return res
}

// final reads job id's final video into dir.
func (sys *system) final(t *testing.T, id, dir string) (string, store.Job) {
	t.Helper()
	j := waitSucceededWithin(t, sys.Store, id, 3*time.Minute)
	r, _, err := sys.Blob.Get(context.Background(), blob.Key(j.FinalKey))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f := filepath.Join(dir, id+".mp4")
	data, _ := io.ReadAll(r)
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return f, j
}

// TestTalkingHeadLipSync: talking-head jobs of the ref-talk model, in chain
// and independent mode at 24, 25 and 30 fps, each of several segments:
//   - the final video decodes to the frames of `spoolctl render --local
//     -audio -reference` and its audio to the same samples;
//   - the mouth opening read back from its frames follows the loudness of
//     the input audio, frame by frame (correlation > 0.9), with the peak of
//     the cross-correlation at lag 0, across the segments' seams;
//   - its audio starts at 0 and ends within one frame of its video, which
//     lasts as long as the audio;
//   - the preview's pieces carry audio that adds up to the same length.
func TestTalkingHeadLipSync(t *testing.T) {
	sys := newSystem(t, 0, 2)
	dir := t.TempDir()
	voice, face := speech(t, dir, 2.6, "voice.wav"), avatar(t, dir)
	tenant := fmt.Sprintf("talk-%x", time.Now().UnixNano())
	aud := storeUpload(t, sys, tenant, voice, "audio", 2.6)
	ref := storeUpload(t, sys, tenant, face, "image", 0)
	const w, h = 160, 120
	type tc struct {
		id, mode string
		fps      int
	}
	var cases []tc
	for _, fps := range []int{24, 25, 30} {
		cases = append(cases, tc{fmt.Sprintf("talk-chain-%d", fps), "MODE_CHAIN", fps}, tc{fmt.Sprintf("talk-indep-%d", fps), "MODE_INDEPENDENT", fps})
	}
	spec := func(c tc) string {
		return fmt.Sprintf(`{"id":"%s-%s","tenant":"%s","model":"ref-talk","prompt":"a presenter","audio":"%s","reference":"%s",`+
			`"mode":"%s","fps":%d,"windowFrames":25,"overlapFrames":5,"width":%d,"height":%d,"steps":3,"seed":5}`,
			c.id, tenant, tenant, aud, ref, c.mode, c.fps, w, h)
	}
	for _, c := range cases {
		sys.submit(t, spec(c))
	}
	heard := pcm(t, voice, 16000)
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			id := c.id + "-" + tenant
			frames := int(plan.FramesOfSamples(int64(len(heard)), c.fps, 16000))
			sys.compareWith(t, id, spec(c), frames, render.Options{Audio: voice, Reference: face}, 3*time.Minute)
			got, j := sys.final(t, id, dir)
			if j.SegmentsTotal < 3 {
				t.Fatalf("%d segments: the test wants seams", j.SegmentsTotal)
			}
			// The oracle's audio, the same samples.
			var oracle bytes.Buffer
			if _, err := render.Render(context.Background(), mustSpec(t, spec(c)), &oracle, render.Options{Audio: voice, Reference: face}); err != nil {
				t.Fatal(err)
			}
			local := filepath.Join(dir, id+"-local.mp4")
			_ = os.WriteFile(local, oracle.Bytes(), 0o644)
			a, b := pcm(t, got, 48000), pcm(t, local, 48000)
			if len(a) == 0 || len(a) != len(b) {
				t.Fatalf("audio of %d samples, the oracle's %d", len(a), len(b))
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("audio sample %d: %v, the oracle's %v", i, a[i], b[i])
				}
			}
			// Durations and start times.
			sp := spans(t, got)
			v, au := sp["video"], sp["audio"]
			frame := 1 / float64(c.fps)
			if math.Abs(au.start) > 0.001 || math.Abs(v.start) > 0.001 || math.Abs(au.end-v.end) > frame ||
				math.Abs(v.end-float64(frames)/float64(c.fps)) > 0.001 {
				t.Fatalf("video [%.4f, %.4f) s, audio [%.4f, %.4f) s, %d frames at %d fps", v.start, v.end, au.start, au.end, frames, c.fps)
			}
			// Lip sync.
			dark := mouthDarkness(rawFrames(t, got, w, h), w, h)
			open := openings(heard, 16000, c.fps, len(dark))
			best, bestLag := -2.0, 0
			for lag := -4; lag <= 4; lag++ {
				if r := pearson(open, dark, lag); r > best {
					best, bestLag = r, lag
				}
			}
			if r0 := pearson(open, dark, 0); r0 < 0.9 || bestLag != 0 {
				t.Fatalf("mouth against loudness: correlation %.3f at lag 0, peak %.3f at lag %d", r0, best, bestLag)
			}
			t.Logf("%s: %d frames, %d segments, lip-sync correlation %.3f at lag 0; audio ends %.1f ms after the video",
				id, frames, j.SegmentsTotal, best, 1000*(au.end-v.end))
			// The preview's pieces carry the audio.
			total := previewAudio(t, sys, id, dir)
			if math.Abs(total-(au.end-au.start)) > frame {
				t.Fatalf("the preview's pieces carry %.4f s of audio, the final %.4f s", total, au.end-au.start)
			}
		})
	}
}

// previewAudio sums the audio the preview's pieces carry, seconds: each
// piece, after the init segment, is a valid fMP4 whose AAC packets
// ffprobe counts (1024 samples at 48 kHz each, the first piece's first
// being the encoder's priming).
func previewAudio(t *testing.T, sys *system, id, dir string) float64 {
	t.Helper()
	ctx := context.Background()
	read := func(k blob.Key) []byte {
		r, _, err := sys.Blob.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, _ := io.ReadAll(r)
		return b
	}
	ik, _ := blob.HLSInit(id)
	init := read(ik)
	total := 0.0
	for i := uint32(0); ; i++ {
		k, _ := blob.HLSSegment(id, i)
		if _, err := sys.Blob.Stat(ctx, k); err != nil {
			if i == 0 {
				t.Fatal("no preview piece")
			}
			return total
		}
		f := filepath.Join(dir, fmt.Sprintf("%s-piece%d.mp4", id, i))
		_ = os.WriteFile(f, append(append([]byte{}, init...), read(k)...), 0o644)
		out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-select_streams", "a:0", "-show_entries", "stream=nb_read_packets",
			"-of", "csv=p=0", f).Output()
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil || n == 0 {
			t.Fatalf("preview piece %d carries no audio: %v", i, err)
		}
		total += float64(n*1024) / 48000
		if i == 0 {
			total -= 1024.0 / 48000 // the encoder's priming, which players drop
		}
	}
}

func mustSpec(t *testing.T, spec string) *spoolv1.JobSpec {
	t.Helper()
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentJSON)
	js, err := bus.DecodeJobSpec([]byte(spec), h)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestTalkingHeadTemplateVideo: a talking head of a template video shorter
// than the job, played back and forth, equals the oracle in frames.
func TestTalkingHeadTemplateVideo(t *testing.T) {
	sys := newSystem(t, 0, 2)
	dir := t.TempDir()
	voice := speech(t, dir, 2, "voice.wav")
	tmpl := filepath.Join(dir, "template.mp4")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=200x150:rate=30:duration=0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p", tmpl)
	tenant := fmt.Sprintf("tmpl-%x", time.Now().UnixNano())
	aud := storeUpload(t, sys, tenant, voice, "audio", 2)
	ref := storeUpload(t, sys, tenant, tmpl, "video", 0.5)
	spec := fmt.Sprintf(`{"id":"tmpl-%s","tenant":"%s","model":"ref-talk","prompt":"a presenter","audio":"%s","reference":"%s",`+
		`"fps":24,"windowFrames":17,"overlapFrames":4,"width":96,"height":64,"steps":2,"seed":1,"fit":"FIT_PAD"}`, tenant, tenant, aud, ref)
	sys.submit(t, spec)
	sys.compareWith(t, "tmpl-"+tenant, spec, 48, render.Options{Audio: voice, Reference: tmpl}, 2*time.Minute)
}

// TestTalkingHeadBatch: 20 talking-head jobs of one POST /batches sharing
// one avatar, each with its own audio of another length and no duration:
// all succeed, each as long as its audio, with its sound.
func TestTalkingHeadBatch(t *testing.T) {
	sys := newSystem(t, 0, 2)
	dir := t.TempDir()
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	tenant := "thb-" + run
	face := upload(t, sys, tenant, "image/png", avatar(t, dir))
	const n = 20
	var body bytes.Buffer
	lengths := make([]float64, n)
	for i := range n {
		lengths[i] = 0.3 + 0.07*float64(i)
		aud := upload(t, sys, tenant, "audio/wav", speech(t, dir, lengths[i], fmt.Sprintf("v%d.wav", i)))
		fmt.Fprintf(&body, `{"id":"thb%s-%d","tenant":"%s","model":"ref-talk","prompt":"a presenter","audio":"%s","reference":"%s",`+
			`"windowFrames":9,"overlapFrames":3,"width":64,"height":64,"steps":1,"seed":%d,"fps":24}`+"\n", run, i, tenant, aud, face, i)
	}
	resp := sys.Do(t, "POST", "/batches?id=thb"+run+"&tenant="+tenant, "application/x-ndjson", &body)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || strings.Contains(string(raw), `"error":{`) {
		t.Fatalf("batch: %d %s", resp.StatusCode, raw)
	}
	for i := range n {
		id := fmt.Sprintf("thb%s-%d", run, i)
		f, j := sys.final(t, id, dir)
		want := plan.FramesOfSamples(int64(math.Round(lengths[i]*16000)), 24, 16000)
		sp := spans(t, f)
		if d := j.TotalFrames - want; d < -1 || d > 1 || j.FinalFrames != j.TotalFrames || math.Abs(sp["audio"].end-sp["video"].end) > 1.0/24 {
			t.Fatalf("job %d of %.2f s of audio: %d frames (want %d±1), final %d; video ends %.3f s, audio %.3f s",
				i, lengths[i], j.TotalFrames, want, j.FinalFrames, sp["video"].end, sp["audio"].end)
		}
	}
}

// upload posts file to the gateway as tenant's upload of content type ct
// and returns its id.
func upload(t *testing.T, sys *system, tenant, ct, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	resp := sys.Do(t, "POST", "/uploads?tenant="+tenant, ct, bytes.NewReader(data))
	defer resp.Body.Close()
	var up struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || (resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK) {
		t.Fatalf("upload %s: %d %v", file, resp.StatusCode, err)
	}
	return up.ID
}

// TestBadAudio: silence, a 0.1 s clip and 8 channels at 192 kHz each make
// a video as long as the audio; a 10-hour track is refused naming the
// limit; a video given as audio is refused naming the kinds.
func TestBadAudio(t *testing.T) {
	sys := newSystem(t, 0, 2)
	dir := t.TempDir()
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	tenant := "bad-" + run
	face := upload(t, sys, tenant, "image/png", avatar(t, dir))
	file := func(name string, args ...string) string {
		f := filepath.Join(dir, name)
		ffmpeg(t, append(args, f)...)
		return f
	}
	silence := file("silence.wav", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1")
	clip := file("clip.wav", "-f", "lavfi", "-i", "sine=f=300:r=48000", "-t", "0.1")
	wide := file("wide.wav", "-f", "lavfi", "-i", "sine=f=300:r=192000", "-t", "0.5", "-af", "pan=7.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0|c6=c0|c7=c0")
	long := file("long.flac", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "36000", "-c:a", "flac")
	movie := file("movie.mp4", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1", "-f", "lavfi", "-i", "sine=d=1",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	common := `"model":"ref-talk","prompt":"a presenter","reference":"` + face + `","windowFrames":9,"overlapFrames":3,"width":64,"height":64,"steps":1,"fps":24`
	for _, c := range []struct {
		name, file, ct string
		frames         int64 // 0: refused
		field, says    string
	}{
		{"silence", silence, "audio/wav", 24, "", ""},
		{"clip", clip, "audio/wav", 2, "", ""},
		{"wide", wide, "audio/wav", 12, "", ""},
		{"long", long, "audio/flac", 0, "audio", "an audio track of at most 10800 s; it lasts 36000.0 s"},
		{"movie", movie, "video/mp4", 0, "audio", "is a video upload"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "bad-" + c.name + "-" + run
			resp := sys.Do(t, "POST", "/generate?tenant="+tenant, "application/json", strings.NewReader(
				`{"id":"`+id+`",`+common+`,"audio":"`+upload(t, sys, tenant, c.ct, c.file)+`"}`))
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if c.frames == 0 {
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), `"field":"`+c.field+`"`) || !strings.Contains(string(raw), c.says) {
					t.Fatalf("want 400 on %s saying %q, got %d %s", c.field, c.says, resp.StatusCode, raw)
				}
				return
			}
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("%d %s", resp.StatusCode, raw)
			}
			f, j := sys.final(t, id, dir)
			sp := spans(t, f)
			if j.TotalFrames != c.frames || math.Abs(sp["audio"].end-sp["video"].end) > 1.0/24 {
				t.Fatalf("%d frames (want %d); video ends %.3f s, audio %.3f s", j.TotalFrames, c.frames, sp["video"].end, sp["audio"].end)
			}
		})
	}
}
