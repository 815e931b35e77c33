package dispatcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

// TestTalkingHeadIntake: a talking-head job without a duration is planned
// from its audio's decoded samples; intake stores the PCM, the AAC and its
// index, the peaks and the reference frames once under the uploads; every
// task carries the audio's key, rate and length and the reference's; the
// job records the AAC manifest and the waveform. A second job of the same
// uploads derives nothing again; one longer than its audio is rejected
// with both lengths; a template video is stored frame by frame.
func TestTalkingHeadIntake(t *testing.T) {
	e, c := mediaEnv(t)
	w := &worker{}
	defer e.runWorker(w)()

	dir := t.TempDir()
	voice, face, tmpl := filepath.Join(dir, "voice.wav"), filepath.Join(dir, "face.png"), filepath.Join(dir, "tmpl.mp4")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "sine=f=220:r=44100:d=2", voice},
		{"-f", "lavfi", "-i", "color=c=0xd8a888:s=200x150", "-frames:v", "1", face},
		{"-f", "lavfi", "-i", "testsrc=size=200x150:rate=30:duration=0.5", "-pix_fmt", "yuv420p", tmpl},
	} {
		if b, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
		}
	}
	tenant := fmt.Sprintf("snd-%x", time.Now().UnixNano())
	aud, img, vid := c.Upload(t, tenant, voice, "audio", 2), c.Upload(t, tenant, face, "image", 0), c.Upload(t, tenant, tmpl, "video", 0.5)
	talk := func(id, extra string) string {
		return `{"id":"` + id + `","tenant":"` + tenant + `","model":"ref-talk","prompt":"a presenter","audio":"` + aud + `",` +
			`"windowFrames":13,"overlapFrames":4,"width":64,"height":64,"steps":1,"fps":25,"pool":"` + e.pool() + `"` + extra + `}`
	}
	id := e.submit(talk("talk-"+tenant, `,"reference":"`+img+`"`))
	j, segs := e.waitJob(id, "done", func(j store.Job, segs []store.Segment) bool {
		if j.State == store.JobRejected {
			t.Fatalf("rejected on %s: %s", j.ErrorField, j.ErrorMessage)
		}
		return allDone(j, segs)
	})
	// 2 s at 16 kHz is 32000 samples: 50 frames at 25 fps.
	if j.TotalFrames != 50 || j.AudioKey == "" || j.WaveformKey == "" {
		t.Fatalf("job: %d frames, audio %q, waveform %q", j.TotalFrames, j.AudioKey, j.WaveformKey)
	}
	var m media.AudioManifest
	if err := json.Unmarshal(read(t, c.Blob, j.AudioKey), &m); err != nil || m.Rate != 16000 || m.Samples != 32000 || m.Track.Packets < 90 {
		t.Fatalf("audio manifest %+v %v", m, err)
	}
	if n := len(read(t, c.Blob, j.WaveformKey)); n != 200 {
		t.Fatalf("waveform of %d peaks, want 200 (one per 10 ms)", n)
	}
	tasks := w.seen()
	if len(tasks) != len(segs) {
		t.Fatalf("%d tasks for %d segments", len(tasks), len(segs))
	}
	for _, task := range tasks {
		if !strings.HasSuffix(task.AudioKey, "/derived/audio-16000/"+media.PCMName) || task.AudioRate != 16000 || task.AudioSamples != 32000 ||
			!strings.HasSuffix(task.ReferenceKey, "/derived/64x64-crop/image.rgb") || task.ReferenceFrames != 1 {
			t.Fatalf("task %d: audio %s at %d Hz (%d samples), reference %s (%d frames)", task.Index, task.AudioKey, task.AudioRate,
				task.AudioSamples, task.ReferenceKey, task.ReferenceFrames)
		}
	}
	if n := len(read(t, c.Blob, tasks[0].AudioKey)); n != 4*32000 {
		t.Fatalf("PCM of %d bytes", n)
	}
	if n := len(read(t, c.Blob, tasks[0].ReferenceKey)); n != 64*64*3 {
		t.Fatalf("reference of %d bytes", n)
	}
	before := list(t, c.Blob, tenant, aud)

	// Again, trimmed to 1 s, with a template video: the audio is not
	// derived again; the template is stored frame by frame at 25 fps.
	id2 := e.submit(talk("talk2-"+tenant, `,"reference":"`+vid+`","durationS":1`))
	j2, _ := e.waitJob(id2, "done", allDone)
	if j2.TotalFrames != 25 || j2.AudioKey != j.AudioKey {
		t.Fatalf("second job: %d frames, audio %s", j2.TotalFrames, j2.AudioKey)
	}
	if after := list(t, c.Blob, tenant, aud); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("the audio was derived again: %v, then %v", before, after)
	}
	for _, task := range w.seen()[len(tasks):] {
		if task.ReferenceFrames < 12 || task.ReferenceFrames > 13 || !strings.HasSuffix(task.ReferenceKey, "/derived/64x64-25fps-crop/reference.rgb") {
			t.Fatalf("template reference: %s of %d frames", task.ReferenceKey, task.ReferenceFrames)
		}
	}

	// Longer than the audio: rejected with both lengths.
	id3 := e.submit(talk("talk3-"+tenant, `,"reference":"`+img+`","durationS":2.5`))
	j3, _ := e.waitJob(id3, "rejected", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobRejected })
	if j3.ErrorField != "duration_s" || !strings.Contains(j3.ErrorMessage, "at most the audio's length, 2.000 s (50 frames at 25 fps)") {
		t.Fatalf("rejected on %s: %s", j3.ErrorField, j3.ErrorMessage)
	}
}

// mediaEnv is newEnv with a dispatcher of its pool, which serves ref-talk,
// running with the stack's object store (media jobs) until the test ends.
func mediaEnv(t *testing.T) (*env, devstacktest.Clients) {
	e := newEnv(t)
	c := devstacktest.Connect(t, 0)
	e.cfg.Pools = e.pool() + ":ref,ref-talk,sim"
	ctx, cancel := context.WithCancel(context.Background())
	d, err := dispatcher.New(ctx, e.cfg, e.bus, e.store, slog.New(slog.NewTextHandler(io.Discard, nil)), dispatcher.WithBlob(c.Blob))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, c
}

func read(t *testing.T, b *blob.Store, key string) []byte {
	t.Helper()
	r, _, err := b.Get(context.Background(), blob.Key(key))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// list names the objects under an upload, with their ETags.
func list(t *testing.T, b *blob.Store, tenant, id string) []string {
	t.Helper()
	p, _ := blob.UploadPrefix(tenant, id)
	objs, err := b.List(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, string(o.Key)+"@"+o.ETag)
	}
	return out
}

// TestLongIntakeHoldsUpNoOne: while the intake of a long audio track runs
// (minutes of sound decoded and encoded), jobs submitted after it are
// accepted at once, and the long one is accepted when its intake ends.
func TestLongIntakeHoldsUpNoOne(t *testing.T) {
	e, c := mediaEnv(t)

	dir := t.TempDir()
	voice, face := filepath.Join(dir, "long.flac"), filepath.Join(dir, "face.png")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "sine=f=220:r=44100:d=240", "-c:a", "flac", voice},
		{"-f", "lavfi", "-i", "color=c=0xd8a888:s=200x150", "-frames:v", "1", face},
	} {
		if b, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
		}
	}
	tenant := fmt.Sprintf("long-%x", time.Now().UnixNano())
	aud, img := c.Upload(t, tenant, voice, "audio", 240), c.Upload(t, tenant, face, "image", 0)
	long := e.submit(`{"id":"long-` + tenant + `","tenant":"` + tenant + `","model":"ref-talk","prompt":"a lecture","audio":"` + aud +
		`","reference":"` + img + `","durationS":1,"windowFrames":13,"overlapFrames":4,"width":64,"height":64,"steps":1,"pool":"` + e.pool() + `"}`)
	// The long one is fetched first: the submissions consumer holds it.
	ctx := context.Background()
	jobs, err := e.bus.JetStream().Consumer(ctx, bus.StreamJobs, bus.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := jobs.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the long submission was never fetched: %+v %v", info, err)
		}
	}
	start := time.Now()
	quick := e.submit(spec(e, `,"id":"quick-`+tenant+`"`))
	q, _ := e.waitJob(quick, "recorded", func(store.Job, []store.Segment) bool { return true })
	took := time.Since(start)
	if took > 5*time.Second {
		t.Fatalf("a plain job waited %v behind a long intake", took)
	}
	l, _ := e.waitJob(long, "recorded", func(j store.Job, _ []store.Segment) bool {
		return j.State == store.JobQueued || j.State == store.JobRunning
	})
	if !q.CreatedAt.Before(l.CreatedAt) {
		t.Fatalf("the plain job was recorded at %v, after the long one at %v", q.CreatedAt, l.CreatedAt)
	}
	t.Logf("a plain job was recorded %v after submission while a 240 s audio track was taken in (%v in all)", took, time.Since(start))
}
