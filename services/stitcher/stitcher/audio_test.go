package stitcher_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/jackc/pgx/v5"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
)

// sound is an audio intake's output as the stitcher finds it in MinIO.
type sound struct {
	key     string // the manifest's, a job's AudioKey
	track   media.AACTrack
	packets []byte
	index   []byte
}

// intakeSound makes a stereo 440 Hz sine of samples at 48 kHz into a WAV,
// takes it in with media.IntakeAudio and stores the manifest, packets and
// index as the derived objects of an audio upload.
func (e *env) intakeSound(t *testing.T, samples int64) sound {
	t.Helper()
	ctx := context.Background()
	wav := filepath.Join(t.TempDir(), "a.wav")
	if b, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=440:r=48000",
		"-af", "atrim=end_sample="+strconv.FormatInt(samples, 10), "-ac", "2", wav).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (make test-deps installs it): %v\n%s", err, b)
	}
	var aac bytes.Buffer
	res, err := media.IntakeAudio(ctx, wav, media.AudioIntakeOptions{Rate: 16000, AAC: &aac})
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	up := blob.UploadIDPrefix + hex.EncodeToString(raw)
	manifest, _ := json.Marshal(media.AudioManifest{Rate: 16000, Samples: res.Samples, Track: res.Track})
	s := sound{track: res.Track, packets: aac.Bytes(), index: res.Index}
	// The manifest last: its presence says the others are there.
	for _, o := range []struct {
		name string
		data []byte
	}{{media.AACName, s.packets}, {media.AACIndexName, s.index}, {media.AudioManifestName, manifest}} {
		key, err := blob.UploadDerived("default", up, "aac", o.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.blob.Put(ctx, key, bytes.NewReader(o.data), int64(len(o.data)), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		s.key = string(key)
	}
	return s
}

// withSound gives job id the audio s, as the dispatcher records an audio
// job's intake, before any of its segments is done.
func (e *env) withSound(t *testing.T, id string, s sound) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, string(e.clients.Stack.PostgresConfig().DSN))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if tag, err := conn.Exec(ctx, `UPDATE jobs SET audio_key = $2 WHERE id = $1`, id, s.key); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("set the audio of %s: %v", id, err)
	}
}

// reference decodes the AAC track alone (its packets in ADTS, the
// priming dropped) to interleaved float32.
func (s sound) reference(t *testing.T) []float32 {
	t.Helper()
	off, err := media.DecodeAACIndex(s.index)
	if err != nil {
		t.Fatal(err)
	}
	// ADTS header: AAC-LC, the config's rate index and channels, no CRC.
	rate, ch := (s.track.Config[0]&7)<<1|s.track.Config[1]>>7, (s.track.Config[1]>>3)&15
	var adts bytes.Buffer
	for k := range s.track.Packets {
		p := s.packets[off[k]:off[k+1]]
		n := len(p) + 7
		adts.Write([]byte{0xFF, 0xF1, 1<<6 | rate<<2 | ch>>2, (ch&3)<<6 | byte(n>>11), byte(n >> 3), byte(n&7)<<5 | 0x1F, 0xFC})
		adts.Write(p)
	}
	all := decodePCM(t, "-f", "aac", "-i", "pipe:0", bytes.NewReader(adts.Bytes()))
	return all[s.track.Priming*s.track.Channels:]
}

// decodePCM runs ffmpeg with args (its input) and decodes the first audio
// stream to interleaved float32.
func decodePCM(t *testing.T, args ...any) []float32 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error")
	for _, a := range args {
		switch a := a.(type) {
		case string:
			cmd.Args = append(cmd.Args, a)
		case *bytes.Reader:
			cmd.Stdin = a
		}
	}
	cmd.Args = append(cmd.Args, "-map", "0:a:0", "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg decode: %v: %s", err, stderr.String())
	}
	pcm := make([]float32, len(out)/4)
	for i := range pcm {
		pcm[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return pcm
}

// checkSound: file has a video and an audio stream; the audio starts at 0,
// ends within a frame of the video's end (frames at fps) and decodes to
// the same samples as the track alone, the packets the video's frames
// carry.
func checkSound(t *testing.T, file string, s sound, frames int64, fps int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var v struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			StartTime string `json:"start_time"`
		}
	}
	_ = json.Unmarshal(out, &v)
	if len(v.Streams) != 2 || v.Streams[0].CodecType != "video" || v.Streams[1].CodecType != "audio" {
		t.Fatalf("streams %+v, want video and audio", v.Streams)
	}
	if start, _ := strconv.ParseFloat(v.Streams[1].StartTime, 64); math.Abs(start) > 0.001 {
		t.Errorf("audio starts at %s s, want 0", v.Streams[1].StartTime)
	}
	_, k1 := s.track.PacketsFor(0, frames, fps)
	got, want := decodePCM(t, "-i", file), s.reference(t)
	n := (k1*media.AACFrameSamples - s.track.Priming) * s.track.Channels
	if len(got) != n || len(want) < n {
		t.Fatalf("%d samples decoded, want %d (the track alone gives %d)", len(got), n, len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("sample %d: %v, the track alone %v", i, got[i], want[i])
		}
	}
	audio, video := float64(n/s.track.Channels)/float64(s.track.SampleRate), float64(frames)/float64(fps)
	if math.Abs(audio-video) > 1/float64(fps) {
		t.Errorf("audio lasts %.4f s, video %.4f s: more than a frame apart", audio, video)
	}
}

// checkNumbering: the fragments of a joined video are numbered 1, 2, 3, …
// whichever track each is of.
func checkNumbering(t *testing.T, data []byte) {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := uint32(1)
	for _, s := range f.Segments {
		for _, fr := range s.Fragments {
			if got := fr.Moof.Mfhd.SequenceNumber; got != want {
				t.Fatalf("fragment %d is numbered %d", want, got)
			}
			want++
		}
	}
}

// audioPackets counts the audio samples of a preview's media segment,
// checking that they follow from first and come after its video.
func audioPackets(t *testing.T, data []byte, first int) int {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n, audioSeen := 0, false
	for _, s := range f.Segments {
		for _, fr := range s.Fragments {
			tr := fr.Moof.Traf
			if tr.Tfhd.TrackID == 1 {
				if audioSeen {
					t.Fatal("video after the audio in a piece")
				}
				continue
			}
			audioSeen = true
			if got := tr.Tfdt.BaseMediaDecodeTime(); got != uint64(first+n)*media.AACFrameSamples {
				t.Fatalf("audio fragment at %d, want packet %d", got, first+n)
			}
			n += int(tr.Trun.SampleCount())
		}
	}
	return n
}

// TestSoundInFinalAndPreview: a chain job with an audio track as long as
// its video gets it in the final MP4 and in every piece of the preview,
// cut at the pieces' frames, decoding to the track's own samples.
func TestSoundInFinalAndPreview(t *testing.T) {
	e := newEnv(t)
	e.stitcher(t, "s1")
	ctx := context.Background()
	const frames = 9 + 3*6 // 4 segments at 24 fps
	s := e.intakeSound(t, frames*2000)
	id := unique("sound")
	tasks := e.chainTasksSpec(t, chainSpec(id, e.pool, frames), 4)
	e.withSound(t, id, s)
	for _, task := range tasks {
		e.done(t, task, 1, 0)
	}
	j := e.waitJob(t, id, store.JobSucceeded)
	check(t, e.final(t, j), expectChain(tasks))
	final := filepath.Join(t.TempDir(), "final.mp4")
	data, err := readAll(e.blob, blob.Key(j.FinalKey))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(final, data, 0o644)
	checkSound(t, final, s, frames, 24)
	checkNumbering(t, data)
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != j.FinalSHA256 || j.FinalFrames != frames {
		t.Fatalf("the job says %s and %d frames, the object's SHA-256 is %x", j.FinalSHA256, j.FinalFrames, sum)
	}

	// The preview: each piece carries the packets of its frames.
	pieces, err := e.store.ListPieces(ctx, id, 0)
	if err != nil || len(pieces) != 4 {
		t.Fatalf("%d pieces, %v", len(pieces), err)
	}
	next := 0
	for _, p := range pieces {
		b, err := readAll(e.blob, mustKey(blob.HLSSegment(id, uint32(p.Index))))
		if err != nil {
			t.Fatal(err)
		}
		k0, k1 := s.track.PacketsFor(p.FirstFrame, p.FirstFrame+int64(p.Frames), 24)
		if p.Index == 0 {
			k0 = 0
		}
		if k0 != next || audioPackets(t, b, k0) != k1-k0 || int64(len(b)) != p.Bytes {
			t.Fatalf("piece %d: packets [%d, %d) expected after %d, %d bytes (the piece says %d)", p.Index, k0, k1, next, len(b), p.Bytes)
		}
		next = k1
	}
	if _, k1 := s.track.PacketsFor(0, frames, 24); next != k1 {
		t.Fatalf("the pieces carry %d packets, want %d", next, k1)
	}
	e.checkPlaylist(t, j)
	// Played as HLS, the preview sounds as the final does.
	dir := t.TempDir()
	objs, err := e.blob.List(ctx, blob.Key("jobs/"+id+"/hls/"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, err := readAll(e.blob, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, filepath.Base(string(o.Key))), b, 0o644)
	}
	hls, fin := decodePCM(t, "-i", filepath.Join(dir, "index.m3u8")), decodePCM(t, "-i", final)
	if len(hls) != len(fin) || !slices.Equal(hls, fin) {
		t.Fatalf("the preview decodes to %d samples, the final to %d, or they differ", len(hls), len(fin))
	}
}

// TestSoundAcrossResume: an extension (include_input) with sound, its
// stitcher stopped after segment 0 and another finishing it, ends with
// the same final bytes as the same job stitched in one go; its first piece
// carries the sound of the input's frames as well as its own.
func TestSoundAcrossResume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := filepath.Join(t.TempDir(), "in.mp4")
	if b, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=0x404040:size=64x64:rate=24:duration=1",
		"-c:v", "libx264rgb", "-crf", "0", "-pix_fmt", "rgb24", in).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	video := e.clients.Upload(t, "default", in, "video", 1)
	const frames = 24 + 12 // the input's, then two segments'
	s := e.intakeSound(t, frames*2000+900)
	spec := func(id string) string {
		return `{"id":"` + id + `","prompt":"x","model":"sim","durationFrames":12,"windowFrames":9,"overlapFrames":3,"width":64,"height":64,` +
			`"steps":1,"fps":24,"pool":"` + e.pool + `","video":"` + video + `","includeInput":true}`
	}
	stop := e.stitcher(t, "s1")
	once := unique("once")
	tasks := e.chainTasksSpec(t, spec(once), 2)
	e.withSound(t, once, s)
	for _, task := range tasks {
		e.done(t, task, 1, 0)
	}
	want := e.waitJob(t, once, store.JobSucceeded)

	resumed := unique("resumed")
	tasks = e.chainTasksSpec(t, spec(resumed), 2)
	e.withSound(t, resumed, s)
	e.done(t, tasks[0], 1, 0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ps, _ := e.store.ListPieces(ctx, resumed, 0); len(ps) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("segment 0 was not appended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	e.stitcher(t, "s2") // after s1's lease
	e.done(t, tasks[1], 1, 0)
	got := e.waitJob(t, resumed, store.JobSucceeded)
	if got.FinalSHA256 != want.FinalSHA256 || got.FinalBytes != want.FinalBytes || got.FinalFrames != frames {
		t.Fatalf("resumed: %s, %d bytes, %d frames; in one go: %s, %d bytes; want the same, %d frames", got.FinalSHA256, got.FinalBytes,
			got.FinalFrames, want.FinalSHA256, want.FinalBytes, frames)
	}
	data, err := readAll(e.blob, blob.Key(got.FinalKey))
	if err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(t.TempDir(), "final.mp4")
	_ = os.WriteFile(final, data, 0o644)
	checkSound(t, final, s, frames, 24)
	checkNumbering(t, data)
	ps, _ := e.store.ListPieces(ctx, resumed, 0)
	b, err := readAll(e.blob, mustKey(blob.HLSSegment(resumed, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if _, k1 := s.track.PacketsFor(0, ps[0].FirstFrame+int64(ps[0].Frames), 24); ps[0].FirstFrame != 24 || audioPackets(t, b, 0) != k1 {
		t.Fatalf("piece 0 from frame %d carries %d packets, want those of frames [0, %d), %d", ps[0].FirstFrame, audioPackets(t, b, 0),
			ps[0].FirstFrame+int64(ps[0].Frames), k1)
	}
}

// TestSoundKeyMustBeAManifest: an audio key that is not an intake's
// manifest is refused before anything is read.
func TestSoundKeyMustBeAManifest(t *testing.T) {
	e := newEnv(t)
	e.stitcher(t, "s1")
	id := unique("badsound")
	tasks := e.chainTasksSpec(t, chainSpec(id, e.pool, 9), 1)
	e.withSound(t, id, sound{key: "jobs/" + id + "/final.mp4"})
	e.done(t, tasks[0], 1, 0)
	time.Sleep(time.Second)
	if ps, _ := e.store.ListPieces(context.Background(), id, 0); len(ps) != 0 {
		t.Fatalf("%d pieces appended with an audio key that is no manifest", len(ps))
	}
}

func mustKey(k blob.Key, err error) blob.Key {
	if err != nil {
		panic(err)
	}
	return k
}
