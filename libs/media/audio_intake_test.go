package media_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/media"
)

// audioOut is what one IntakeAudio run wrote.
type audioOut struct {
	res      media.AudioIntakeResult
	pcm, aac []byte
}

func intakeAudio(t *testing.T, file string, o media.AudioIntakeOptions) audioOut {
	t.Helper()
	var pcm, aac bytes.Buffer
	o.PCM, o.AAC = &pcm, &aac
	res, err := media.IntakeAudio(context.Background(), file, o)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(file), err)
	}
	return audioOut{res: res, pcm: pcm.Bytes(), aac: aac.Bytes()}
}

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// adts is the AAC packets with an ADTS header each, built from the
// track's AudioSpecificConfig: a stream ffmpeg decodes by itself.
func adts(t *testing.T, tr media.AACTrack, aac, index []byte) []byte {
	t.Helper()
	offs, err := media.DecodeAACIndex(index)
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != tr.Packets+1 || offs[len(offs)-1] != uint64(len(aac)) {
		t.Fatalf("index of %d offsets ending at %d for %d packets of %d bytes", len(offs), offs[len(offs)-1], tr.Packets, len(aac))
	}
	c := tr.Config
	aot, sf, ch := int(c[0]>>3), int(c[0]&7)<<1|int(c[1]>>7), int(c[1]>>3)&15
	if aot != 2 || sf != 3 || ch != tr.Channels {
		t.Fatalf("config %x: object type %d, rate index %d, %d channels; want 2 (LC), 3 (48 kHz), %d", c, aot, sf, ch, tr.Channels)
	}
	var out bytes.Buffer
	for k := 0; k < tr.Packets; k++ {
		p := aac[offs[k]:offs[k+1]]
		n := len(p) + 7
		out.Write([]byte{0xFF, 0xF1, byte((aot-1)<<6 | sf<<2 | ch>>2), byte((ch&3)<<6 | n>>11), byte(n >> 3), byte((n&7)<<5 | 0x1F), 0xFC})
		out.Write(p)
	}
	return out.Bytes()
}

// decodeAAC decodes the track's packets with ffmpeg: the first channel,
// priming included, at 48 kHz.
func decodeAAC(t *testing.T, o audioOut) []float32 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "aac", "-i", "pipe:0", "-af", "pan=mono|c0=c0", "-f", "f32le", "pipe:1")
	cmd.Stdin = bytes.NewReader(adts(t, o.res.Track, o.aac, o.res.Index))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg cannot decode the aac: %v\n%s", err, stderr.String())
	}
	return floats(out)
}

// sineError is the RMS difference between got[from+k] and
// amp·sin(2π·f·k/rate), k in [lo, hi).
func sineError(got []float32, from, lo, hi int, amp, f, rate float64) float64 {
	var sum float64
	for k := lo; k < hi; k++ {
		d := float64(got[from+k]) - amp*math.Sin(2*math.Pi*f*float64(k)/rate)
		sum += d * d
	}
	return math.Sqrt(sum / float64(hi-lo))
}

// TestIntakeAudioSine: a mono 2.5 s sine at 44.1 kHz gives exactly 40000
// PCM samples at 16 kHz that follow the sine from sample 0; an AAC track
// of 120000 samples at 48 kHz whose packets, decoded, follow the sine
// from sample Priming; peaks of its amplitude; and the same bytes on a
// second run.
func TestIntakeAudioSine(t *testing.T) {
	in := ffmpegMake(t, t.TempDir(), "sine.wav", "-f", "lavfi", "-i", "aevalsrc=0.5*sin(2*PI*440*t):s=44100:d=2.5", "-c:a", "pcm_f32le")
	o := media.AudioIntakeOptions{Rate: 16000, MaxSeconds: 2.5}
	a := intakeAudio(t, in, o)
	r := a.res
	if r.Samples != 40000 || len(a.pcm) != 4*40000 {
		t.Fatalf("%d samples (%d bytes), want 40000", r.Samples, len(a.pcm))
	}
	e := sineError(floats(a.pcm), 0, 0, 40000, 0.5, 440, 16000)
	t.Logf("the PCM is %.2g RMS off the sine", e)
	if e > 0.005 {
		t.Errorf("the PCM is %.4f RMS off the sine", e)
	}
	tr := r.Track
	if tr.SampleRate != 48000 || tr.Channels != 1 || tr.Samples != 120000 || tr.Priming != 1024 {
		t.Errorf("track %+v: want 48000 Hz, 1 channel, 120000 samples, priming 1024", tr)
	}
	if end := int64(tr.Priming) + tr.Samples; int64(tr.Packets)*1024 < end || int64(tr.Packets-1)*1024 >= end {
		t.Errorf("%d packets for %d priming + %d samples", tr.Packets, tr.Priming, tr.Samples)
	}
	dec := decodeAAC(t, a)
	if len(dec) != tr.Packets*1024 {
		t.Fatalf("the aac decodes to %d samples, want %d packets of 1024", len(dec), tr.Packets)
	}
	// Away from the edges' transients, where a shift of one sample would
	// make it 0.02.
	e = sineError(dec, tr.Priming, 4800, int(tr.Samples)-4800, 0.5, 440, 48000)
	t.Logf("the decoded AAC is %.2g RMS off the sine; %d packets, %d bytes", e, tr.Packets, len(a.aac))
	if e > 0.006 {
		t.Errorf("the decoded AAC, from sample %d, is %.4f RMS off the sine", tr.Priming, e)
	}
	if len(r.Peaks) != 250 {
		t.Fatalf("%d peaks, want 250 (one per 10 ms)", len(r.Peaks))
	}
	for i, p := range r.Peaks {
		if p < 126 || p > 129 {
			t.Fatalf("peak %d is %d, want 0.5 × 255 ≈ 128", i, p)
		}
	}
	b := intakeAudio(t, in, o)
	if !bytes.Equal(a.pcm, b.pcm) || !bytes.Equal(a.aac, b.aac) || !bytes.Equal(a.res.Index, b.res.Index) ||
		!bytes.Equal(a.res.Track.Config, b.res.Track.Config) || !bytes.Equal(a.res.Peaks, b.res.Peaks) {
		t.Fatal("two runs give different bytes")
	}
}

// TestIntakeAudioInputs: channels, rates, lengths and containers.
func TestIntakeAudioInputs(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name     string
		args     []string
		rate     int
		samples  int64 // PCM
		aac      int64 // AAC track samples at 48 kHz
		channels int
		peak     [2]byte // bounds of every peak
	}{
		{"stereo.wav", []string{"-f", "lavfi", "-i", "aevalsrc=sin(2*PI*1000*t)|sin(2*PI*1000*t):s=48000:d=1", "-c:a", "pcm_f32le"},
			24000, 24000, 48000, 2, [2]byte{254, 255}},
		{"silence.flac", []string{"-f", "lavfi", "-i", "anullsrc=r=22050:cl=stereo", "-t", "1.5"},
			16000, 24000, 72000, 2, [2]byte{0, 0}},
		{"8ch.wav", []string{"-f", "lavfi", "-i", "sine=f=300:r=192000:d=2", "-af", "pan=7.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0|c6=c0|c7=c0", "-c:a", "pcm_s24le"},
			16000, 32000, 96000, 2, [2]byte{1, 255}},
		{"clip.m4a", []string{"-f", "lavfi", "-i", "sine=f=440:r=44100:d=0.1", "-c:a", "aac"},
			8000, -1, -1, 1, [2]byte{0, 255}},
		{"video.mp4", []string{"-f", "lavfi", "-i", "testsrc=size=64x64:rate=24:duration=2", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=2",
			"-ac", "2", "-c:v", "libx264", "-c:a", "pcm_s16le", "-f", "mov"},
			16000, 32000, 96000, 2, [2]byte{1, 255}},
		// Sound that starts 0.5 s into the video is not padded: 1 s of it.
		{"late.mov", []string{"-f", "lavfi", "-i", "testsrc=size=64x64:rate=24:duration=2", "-itsoffset", "0.5", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1",
			"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "pcm_s16le"},
			16000, 16000, 48000, 1, [2]byte{1, 255}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := ffmpegMake(t, dir, c.name, c.args...)
			a := intakeAudio(t, in, media.AudioIntakeOptions{Rate: c.rate})
			r := a.res
			if r.Samples < 1 || (c.samples >= 0 && r.Samples != c.samples) || len(a.pcm) != int(4*r.Samples) {
				t.Errorf("%d samples in %d bytes, want %d", r.Samples, len(a.pcm), c.samples)
			}
			if r.Track.Packets < 1 || r.Track.Channels != c.channels || (c.aac >= 0 && r.Track.Samples != c.aac) {
				t.Errorf("track %+v: want %d channels, %d samples", r.Track, c.channels, c.aac)
			}
			if want := (r.Samples + int64(c.rate/100) - 1) / int64(c.rate/100); int64(len(r.Peaks)) != want {
				t.Errorf("%d peaks, want %d", len(r.Peaks), want)
			}
			lo, hi := byte(255), byte(0)
			for _, p := range r.Peaks {
				lo, hi = min(lo, p), max(hi, p)
			}
			if lo < c.peak[0] || hi > c.peak[1] {
				t.Errorf("peaks from %d to %d, want within %v", lo, hi, c.peak)
			}
			dec := decodeAAC(t, a)
			if n := int64(len(dec)) - int64(r.Track.Priming); n < r.Track.Samples || n >= r.Track.Samples+1024 {
				t.Errorf("the aac decodes to %d samples after priming, want %d within a packet", n, r.Track.Samples)
			}
		})
	}
}

// TestIntakeAudioRefuses: no audio, not media, too long, a bad rate.
func TestIntakeAudioRefuses(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "text.wav")
	if err := os.WriteFile(txt, []byte("not audio at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mute := ffmpegMake(t, dir, "mute.mp4", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=24:duration=1", "-c:v", "libx264")
	long := ffmpegMake(t, dir, "long.wav", "-f", "lavfi", "-i", "sine=r=16000:d=2.5")
	// ADTS has no duration: ffprobe guesses about 1.3 s from the bitrate of
	// the loud first second of 6 s, and the bound stops the decode.
	liar := ffmpegMake(t, dir, "liar.aac", "-f", "lavfi", "-i", "anoisesrc=d=1:r=48000:a=1:seed=3", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
		"-filter_complex", "[1]atrim=duration=5[s];[0][s]concat=n=2:v=0:a=1", "-c:a", "aac", "-f", "adts")
	ctx := context.Background()
	for _, c := range []struct {
		file string
		o    media.AudioIntakeOptions
		want []string
	}{
		{txt, media.AudioIntakeOptions{Rate: 16000}, []string{"cannot read", "Invalid data"}},
		{mute, media.AudioIntakeOptions{Rate: 16000}, []string{"no audio stream"}},
		{filepath.Join(dir, "missing.wav"), media.AudioIntakeOptions{Rate: 16000}, []string{"ffprobe"}},
		{long, media.AudioIntakeOptions{Rate: 16000, MaxSeconds: 1}, []string{"2.500 s", "at most 1 s"}},
		{liar, media.AudioIntakeOptions{Rate: 16000, MaxSeconds: 3}, []string{"more than 3.000 s", "at most 3 s"}},
	} {
		_, err := media.IntakeAudio(ctx, c.file, c.o)
		if !errors.Is(err, media.ErrIntake) {
			t.Errorf("%s: %v, want ErrIntake", filepath.Base(c.file), err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", filepath.Base(c.file), err, w)
			}
		}
	}
	for _, rate := range []int{0, 7999, 192001} {
		if _, err := media.IntakeAudio(ctx, long, media.AudioIntakeOptions{Rate: rate}); err == nil || errors.Is(err, media.ErrIntake) {
			t.Errorf("rate %d: %v, want a plain error", rate, err)
		}
	}
}

// TestIntakeAudioCancel: a cancelled intake says so, not that the input
// is bad.
func TestIntakeAudioCancel(t *testing.T) {
	in := ffmpegMake(t, t.TempDir(), "long.flac", "-f", "lavfi", "-i", "sine=r=48000:d=120")
	ctx, cancel := context.WithCancel(context.Background())
	pcm := writerFunc(func(b []byte) (int, error) { cancel(); return len(b), nil })
	_, err := media.IntakeAudio(ctx, in, media.AudioIntakeOptions{Rate: 16000, PCM: pcm})
	if !errors.Is(err, context.Canceled) || errors.Is(err, media.ErrIntake) {
		t.Fatalf("%v, want context.Canceled", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
