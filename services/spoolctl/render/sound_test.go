package render_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/services/spoolctl/render"
)

// TestRenderWithSound: the oracle muxes a spec's audio into its video
// piece by piece, as the stitcher does: two streams, the audio from 0 to
// within a frame of the video's end, decoding to the samples of the AAC
// track alone, fragments numbered on across both tracks, each segment's
// audio after its video. With no duration the job lasts as long as its
// audio.
func TestRenderWithSound(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wav := filepath.Join(dir, "a.wav")
	const samples = 48000*5/4 + 300 // 1.25 s and a bit: 30 frames at 24 fps
	if b, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=440:r=48000",
		"-af", "atrim=end_sample="+strconv.Itoa(samples), "-ac", "2", wav).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (make test-deps installs it): %v\n%s", err, b)
	}
	_, face := makeMedia(t)
	var aac bytes.Buffer
	in, err := media.IntakeAudio(ctx, wav, media.AudioIntakeOptions{Rate: 16000, AAC: &aac})
	if err != nil {
		t.Fatal(err)
	}
	common := `"model":"ref-talk","audio":"up-a","reference":"up-r","prompt":"a drum","windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":2,"seed":3,"fps":24`
	for _, c := range []struct {
		name, spec string
		frames     int64
	}{
		{"chain, shorter than its audio", `{"id":"snd-chain","durationFrames":26,` + common + `}`, 26},
		{"independent, as long as its audio", `{"id":"snd-indep","mode":"MODE_INDEPENDENT",` + common + `}`, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := renderSpec(t, c.spec, render.Options{Audio: wav, Reference: face})
			file := filepath.Join(t.TempDir(), "out.mp4")
			_ = os.WriteFile(file, out, 0o644)
			probe, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=codec_type,start_time,nb_read_frames",
				"-of", "json", file).Output()
			if err != nil {
				t.Fatal(err)
			}
			var v struct {
				Streams []struct {
					CodecType string `json:"codec_type"`
					StartTime string `json:"start_time"`
					Frames    string `json:"nb_read_frames"`
				}
			}
			_ = json.Unmarshal(probe, &v)
			if len(v.Streams) != 2 || v.Streams[0].CodecType != "video" || v.Streams[1].CodecType != "audio" ||
				v.Streams[0].Frames != strconv.FormatInt(c.frames, 10) {
				t.Fatalf("streams %+v, want %d frames of video, and audio", v.Streams, c.frames)
			}
			if start, _ := strconv.ParseFloat(v.Streams[1].StartTime, 64); math.Abs(start) > 0.001 {
				t.Errorf("audio starts at %s s, want 0", v.Streams[1].StartTime)
			}
			_, k1 := in.Track.PacketsFor(0, c.frames, 24)
			got, want := decodeAudio(t, "-i", file), adtsReference(t, in.Track, aac.Bytes(), in.Index)
			n := (k1*media.AACFrameSamples - in.Track.Priming) * in.Track.Channels
			if len(got) != n || !slices.Equal(got, want[:n]) {
				t.Fatalf("%d samples decoded, want %d, those of the track alone", len(got), n)
			}
			if a, v := float64(n/2)/48000, float64(c.frames)/24; math.Abs(a-v) > 1.0/24 {
				t.Errorf("audio lasts %.4f s, video %.4f s", a, v)
			}
			checkLayout(t, out, k1)
		})
	}
}

// TestTalkingHeadJobHasItsSound: a talking-head job (ref-talk, an audio
// and a reference upload) run by the dispatcher, a worker and the
// stitcher, lasting as long as its audio, ends with a final MP4 that
// carries the AAC its intake stored (the job's audio_key and the objects
// beside it): two streams, the audio from 0 to within a frame of the
// video's end, decoding to the track's own samples.
func TestTalkingHeadJobHasItsSound(t *testing.T) {
	sys := newSystem(t, 0, 2)
	ctx := context.Background()
	dir := t.TempDir()
	wav := filepath.Join(dir, "talk.wav")
	if b, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=300:r=44100:d=1.5",
		"-ac", "2", wav).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	_, image := makeMedia(t)
	tenant := fmt.Sprintf("sound-%x", time.Now().UnixNano())
	aud, ref := storeUpload(t, sys, tenant, wav, "audio", 1.5), storeUpload(t, sys, tenant, image, "image", 0)
	id := fmt.Sprintf("talk-%x", time.Now().UnixNano()%1e9)
	sys.submit(t, `{"id":"`+id+`","tenant":"`+tenant+`","prompt":"a reading","model":"ref-talk","audio":"`+aud+`","reference":"`+ref+
		`","windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":2,"seed":3,"fps":24}`)
	j := waitSucceededWithin(t, sys.Store, id, 90*time.Second)
	if j.AudioKey == "" || j.FinalFrames != 36 {
		t.Fatalf("job with audio key %q and %d frames, want one and 36 (1.5 s)", j.AudioKey, j.FinalFrames)
	}
	read := func(key string) []byte {
		r, _, err := sys.Blob.Get(ctx, blob.Key(key))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, _ := io.ReadAll(r)
		return b
	}
	var m media.AudioManifest
	if err := json.Unmarshal(read(j.AudioKey), &m); err != nil {
		t.Fatal(err)
	}
	folder := strings.TrimSuffix(j.AudioKey, media.AudioManifestName)
	packets, index := read(folder+media.AACName), read(folder+media.AACIndexName)
	file := filepath.Join(dir, "final.mp4")
	_ = os.WriteFile(file, read(j.FinalKey), 0o644)
	_, k1 := m.Track.PacketsFor(0, 36, 24)
	got, want := decodeAudio(t, "-i", file), adtsReference(t, m.Track, packets, index)
	n := (k1*media.AACFrameSamples - m.Track.Priming) * m.Track.Channels
	if len(got) != n || !slices.Equal(got, want[:n]) {
		t.Fatalf("%d samples decoded from the final, want %d, those of the track alone", len(got), n)
	}
	if a := float64(n/m.Track.Channels) / float64(m.Track.SampleRate); math.Abs(a-1.5) > 1.0/24 {
		t.Errorf("the final's audio lasts %.4f s, its video 1.5 s", a)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time", "-of", "csv=p=0", file).Output()
	if err != nil || strings.Fields(string(probe))[0] != "video,0.000000" || strings.Fields(string(probe))[1] != "audio,0.000000" {
		t.Fatalf("ffprobe: %q, %v; want video and audio from 0", probe, err)
	}
}

func renderSpec(t *testing.T, spec string, o render.Options) []byte {
	t.Helper()
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentJSON)
	js, err := bus.DecodeJobSpec([]byte(spec), h)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := render.Render(context.Background(), js, &out, o); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkLayout: fragments numbered 1, 2, 3, …; after each run of video
// fragments (a segment's) one audio fragment, its packets following the
// last's, k1 in all.
func checkLayout(t *testing.T, out []byte, k1 int) {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	seq, packets, videoRun := uint32(1), 0, false
	for _, s := range f.Segments {
		for _, fr := range s.Fragments {
			if fr.Moof.Mfhd.SequenceNumber != seq {
				t.Fatalf("fragment %d numbered %d", seq, fr.Moof.Mfhd.SequenceNumber)
			}
			seq++
			tr := fr.Moof.Traf
			if tr.Tfhd.TrackID == 1 {
				videoRun = true
				continue
			}
			if !videoRun || tr.Tfdt.BaseMediaDecodeTime() != uint64(packets)*media.AACFrameSamples {
				t.Fatalf("audio fragment at %d after packet %d (after video: %v)", tr.Tfdt.BaseMediaDecodeTime(), packets, videoRun)
			}
			videoRun = false
			packets += int(tr.Trun.SampleCount())
		}
	}
	if packets != k1 {
		t.Fatalf("%d packets carried, want %d", packets, k1)
	}
}

// adtsReference decodes an AAC track alone (its packets in ADTS, the
// priming dropped) to interleaved float32.
func adtsReference(t *testing.T, tr media.AACTrack, packets, index []byte) []float32 {
	t.Helper()
	off, err := media.DecodeAACIndex(index)
	if err != nil {
		t.Fatal(err)
	}
	rate, ch := (tr.Config[0]&7)<<1|tr.Config[1]>>7, (tr.Config[1]>>3)&15
	var adts bytes.Buffer
	for k := range tr.Packets {
		p := packets[off[k]:off[k+1]]
		n := len(p) + 7
		adts.Write([]byte{0xFF, 0xF1, 1<<6 | rate<<2 | ch>>2, (ch&3)<<6 | byte(n>>11), byte(n >> 3), byte(n&7)<<5 | 0x1F, 0xFC})
		adts.Write(p)
	}
	f := filepath.Join(t.TempDir(), "ref.aac")
	_ = os.WriteFile(f, adts.Bytes(), 0o644)
	return decodeAudio(t, "-f", "aac", "-i", f)[tr.Priming*tr.Channels:]
}

// decodeAudio decodes the first audio stream of ffmpeg's input args to
// interleaved float32.
func decodeAudio(t *testing.T, args ...string) []float32 {
	t.Helper()
	args = append(append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...), "-map", "0:a:0", "-f", "f32le",
		"-c:a", "pcm_f32le", "pipe:1")
	out, err := exec.Command("ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v", args, err)
	}
	pcm := make([]float32, len(out)/4)
	for i := range pcm {
		pcm[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return pcm
}
