package stitcher_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
)

// spans records every span the tests' processes start: the dispatcher's
// and the stitcher's, with the W3C propagator that carries them in NATS
// headers.
var spans = tracetest.NewSpanRecorder()

func TestMain(m *testing.M) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	os.Exit(devstacktest.Run(m))
}

const w, h = 64, 64

type env struct {
	clients devstacktest.Clients
	bus     *bus.Bus
	blob    *blob.Store
	store   *store.Store
	pool    string
}

func newEnv(t *testing.T) *env {
	c := devstacktest.Connect(t, 0)
	ctx := context.Background()
	b, s, bl := c.Bus, c.Store, c.Blob
	// A pool of its own, this run's: tasks a test leaves queued never
	// reach another test, nor the same test run again (-count).
	pool := unique(strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	e := &env{clients: c, bus: b, blob: bl, store: s, pool: pool}
	cfg := dispatcher.Config{Pools: pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond, ReconcileEvery: time.Hour,
		RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 64, LiveAhead: 2, OutboxBatch: 64, SubmitBatch: 16, SegmentDeadline: time.Minute,
		Codec: "lossless"}
	d, err := dispatcher.New(ctx, cfg, b, s, quiet(), dispatcher.WithBlob(bl))
	if err != nil {
		t.Fatal(err)
	}
	e.run(t, d.Run)
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (e *env) run(t *testing.T, fn func(context.Context) error) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// stitcher starts a stitcher with the lossless codec and the smallest part.
func (e *env) stitcher(t *testing.T, id string) context.CancelFunc {
	s, err := stitcher.New(stitcher.Config{ID: id, PartSize: blob.MinPartSize, OpenJobs: 4, Parallel: 4, Lease: 2 * time.Second,
		LiveWindow: 3, Codec: "lossless", Sweep: 500 * time.Millisecond}, e.bus, e.store, e.blob, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return e.run(t, s.Run)
}

func newH264Stitcher(e *env) (*stitcher.Stitcher, error) {
	return stitcher.New(stitcher.Config{ID: "h264", PartSize: blob.MinPartSize, OpenJobs: 4, Parallel: 4, Lease: 2 * time.Second,
		LiveWindow: 3, Codec: "h264", Sweep: 500 * time.Millisecond}, e.bus, e.store, e.blob, quiet())
}

// pixel is the synthetic content of frame i (0-based within its segment)
// of segment seg: every byte of the frame, different across segments so
// that a crossfade shows.
func pixel(seg, i int) byte { return byte(seg*60 + i*7) }

// tasks submits spec and takes its n tasks from the pool, as a worker
// would, without running them.
func (e *env) tasks(t *testing.T, spec string, n int) []*spoolv1.SegmentTask {
	t.Helper()
	ctx := context.Background()
	msg := nats.NewMsg(bus.SubjectJobSubmit)
	msg.Data = []byte(spec)
	msg.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	if _, err := e.bus.JetStream().PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	c, err := e.bus.DeclarePool(ctx, e.pool)
	if err != nil {
		t.Fatal(err)
	}
	var out []*spoolv1.SegmentTask
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		m, err := bus.FetchOne(ctx, c, time.Second)
		if err != nil {
			continue
		}
		task, err := bus.DecodeTask(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		_ = m.Ack()
		out = append(out, task)
	}
	if len(out) != n {
		t.Fatalf("%d tasks, want %d", len(out), n)
	}
	slices.SortFunc(out, func(a, b *spoolv1.SegmentTask) int { return int(a.Index) - int(b.Index) })
	return out
}

// done encodes a task's kept frames with the lossless codec as a worker
// would (overlap frames dropped in a chain, kept in their own fragments
// when independent), uploads the fragment and publishes DONE. frames
// overrides the count (a worker that lost frames).
func (e *env) done(t *testing.T, task *spoolv1.SegmentTask, attempt uint32, frames int) {
	t.Helper()
	ctx := context.Background()
	kept, o := int(task.Frames-task.TrimFrames), int(task.Overlap)
	from, start := 0, int64(task.FirstFrame)
	var keys []int
	if task.Mode == spoolv1.Mode_MODE_CHAIN { // overlap dropped; 0 for segment 0 unless it extends a video
		from, start = o, start+int64(o)
	}
	if task.Mode == spoolv1.Mode_MODE_INDEPENDENT {
		keys = []int{o, kept - int(task.CrossfadeFrames)}
	}
	if frames == 0 {
		frames = kept - from
	}
	var enc bytes.Buffer
	en, err := media.NewEncoder(ctx, &enc, media.EncodeOptions{Width: w, Height: h, FPS: int(task.Fps), Codec: media.Lossless(), Keyframes: keys})
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+frames; i++ {
		if err := en.WriteFrame(bytes.Repeat([]byte{pixel(int(task.Index), i)}, w*h*3)); err != nil {
			t.Fatal(err)
		}
	}
	if err := en.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := media.Retime(enc.Bytes(), int(task.Fps), start, 1)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := blob.SegmentVideo(task.JobId, task.Index, attempt, "mp4")
	data := append(c.Init, c.Media...)
	info, err := e.blob.Put(ctx, key, bytes.NewReader(data), int64(len(data)), blob.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := &spoolv1.SegmentResult{JobId: task.JobId, Index: task.Index, Attempt: attempt, Phase: spoolv1.Phase_PHASE_DONE, Pool: task.Pool,
		VideoKey: string(key), Sha256: info.SHA256, Bytes: uint64(info.Size), Frames: uint32(c.Frames), WorkerId: "test", Backend: "test"}
	if _, err := e.bus.PublishResult(ctx, r); err != nil {
		t.Fatal(err)
	}
}

// waitJob waits for the job to reach want.
func (e *env) waitJob(t *testing.T, id string, want store.JobState) store.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		j, err := e.store.GetJob(context.Background(), id)
		if err == nil && j.State == want {
			return j
		}
		if err == nil && j.State.Terminal() {
			t.Fatalf("job %s %s: %s", id, j.State, j.ErrorMessage)
		}
		time.Sleep(20 * time.Millisecond)
	}
	j, _ := e.store.GetJob(context.Background(), id)
	t.Fatalf("job %s is %s, want %s", id, j.State, want)
	return store.Job{}
}

// final downloads the job's final MP4 and decodes it.
func (e *env) final(t *testing.T, j store.Job) [][]byte {
	t.Helper()
	return e.finalSized(t, j, w, h)
}

func (e *env) finalSized(t *testing.T, j store.Job, w, h int) [][]byte {
	t.Helper()
	r, info, err := e.blob.Get(context.Background(), blob.Key(j.FinalKey))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(r)
	r.Close()
	if int64(len(data)) != j.FinalBytes || info.Size != j.FinalBytes {
		t.Fatalf("final is %d bytes, the job says %d", len(data), j.FinalBytes)
	}
	frames, err := media.DecodeRGB(context.Background(), data, w, h)
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

// expectChain is the chain video: segment k's frames from its overlap on.
func expectChain(tasks []*spoolv1.SegmentTask) []byte {
	var want []byte
	for _, task := range tasks {
		from := 0
		if task.Index > 0 {
			from = int(task.Overlap)
		}
		for i := from; i < int(task.Frames-task.TrimFrames); i++ {
			want = append(want, pixel(int(task.Index), i))
		}
	}
	return want
}

func check(t *testing.T, frames [][]byte, want []byte) {
	t.Helper()
	if len(frames) != len(want) {
		t.Fatalf("%d frames decoded, want %d", len(frames), len(want))
	}
	for i, f := range frames {
		if f[0] != want[i] || !bytes.Equal(f, bytes.Repeat(f[:1], len(f))) {
			t.Fatalf("frame %d = %d…, want %d", i, f[0], want[i])
		}
	}
}

func chainSpec(id, pool string, frames int) string {
	return fmt.Sprintf(`{"id":"%s","prompt":"x","model":"sim","durationFrames":%d,"windowFrames":9,"overlapFrames":3,`+
		`"width":%d,"height":%d,"steps":1,"fps":24,"pool":"%s"}`, id, frames, w, h, pool)
}

// TestChainOutOfOrderAndDuplicates: DONEs arrive last first, one twice and
// one again after the job succeeded; the final MP4 holds exactly the
// expected frames, the HLS playlist is closed and sums to the video, and
// the job's artifact matches the object.
func TestChainOutOfOrderAndDuplicates(t *testing.T) {
	e := newEnv(t)
	e.stitcher(t, "s1")
	tasks := e.chainTasks(t, "ooo", 4)
	for i := len(tasks) - 1; i >= 0; i-- {
		e.done(t, tasks[i], 1, 0)
		if i == 2 {
			e.done(t, tasks[i], 1, 0) // duplicate delivery
		}
	}
	j := e.waitJob(t, "ooo", store.JobSucceeded)
	check(t, e.final(t, j), expectChain(tasks))
	e.done(t, tasks[1], 1, 0) // after the end: changes nothing
	time.Sleep(300 * time.Millisecond)
	if j2, _ := e.store.GetJob(context.Background(), "ooo"); j2.FinalSHA256 != j.FinalSHA256 || j2.State != store.JobSucceeded {
		t.Fatalf("a late duplicate changed the job: %+v", j2)
	}
	e.checkPlaylist(t, j)
}

// chainTasks queues a chain job of n segments; a chain releases one
// segment at a time, so each is answered with TAIL_READY to get the next.
func (e *env) chainTasks(t *testing.T, id string, n int) []*spoolv1.SegmentTask {
	t.Helper()
	return e.chainTasksSpec(t, chainSpec(id, e.pool, 9+(n-1)*6), n)
}

func (e *env) chainTasksSpec(t *testing.T, spec string, n int) []*spoolv1.SegmentTask {
	t.Helper()
	ctx := context.Background()
	msg := nats.NewMsg(bus.SubjectJobSubmit)
	msg.Data = []byte(spec)
	msg.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	if _, err := e.bus.JetStream().PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	c, err := e.bus.DeclarePool(ctx, e.pool)
	if err != nil {
		t.Fatal(err)
	}
	var out []*spoolv1.SegmentTask
	for len(out) < n {
		m, err := fetch(t, c)
		if err != nil {
			t.Fatal(err)
		}
		task, _ := bus.DecodeTask(m.Data())
		_ = m.Ack()
		out = append(out, task)
		if int(task.Index) < n-1 {
			key, _ := blob.SegmentTail(task.JobId, task.Index, task.Attempt)
			if _, err := e.bus.PublishResult(ctx, &spoolv1.SegmentResult{JobId: task.JobId, Index: task.Index, Attempt: task.Attempt,
				Phase: spoolv1.Phase_PHASE_TAIL_READY, Pool: task.Pool, TailKey: string(key)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func fetch(t *testing.T, c jetstream.Consumer) (jetstream.Msg, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m, err := bus.FetchOne(context.Background(), c, time.Second)
		if err == nil {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no task in 10 s")
}

// checkPlaylist: ffprobe reads the playlist through MinIO, its durations
// sum to the job's, and it is closed.
func (e *env) checkPlaylist(t *testing.T, j store.Job) {
	t.Helper()
	ctx := context.Background()
	key, _ := blob.HLSPlaylist(j.ID)
	data, err := readAll(e.blob, key)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.Contains(text, "#EXT-X-ENDLIST") || !strings.Contains(text, "#EXT-X-PLAYLIST-TYPE:EVENT") {
		t.Fatalf("playlist:\n%s", text)
	}
	// Play it from a directory, as a player would over HTTP.
	dir := t.TempDir()
	objs, err := e.blob.List(ctx, blob.Key("jobs/"+j.ID+"/hls/"))
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
	info, err := media.Probe(ctx, filepath.Join(dir, "index.m3u8"), media.ProbeOptions{CountFrames: true})
	if err != nil {
		t.Fatalf("ffprobe of the playlist: %v", err)
	}
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		var d float64
		if _, err := fmt.Sscanf(line, "#EXTINF:%f,", &d); err == nil {
			sum += d
		}
	}
	if want := float64(j.TotalFrames) / float64(j.FPS); sum < want-1e-3 || sum > want+1e-3 || int64(info.Frames) != j.TotalFrames {
		t.Fatalf("playlist: %.4f s and %d frames, want %.4f s and %d", sum, info.Frames, want, j.TotalFrames)
	}
}

func readAll(b *blob.Store, key blob.Key) ([]byte, error) {
	r, _, err := b.Get(context.Background(), key)
	if err != nil {
		return nil, err
	}
	return readAllReader(r)
}

func readAllReader(r io.ReadCloser) ([]byte, error) {
	defer r.Close()
	return io.ReadAll(r)
}

// TestIndependentCrossfadeIsExact: with the lossless codec, every overlap
// of an independent job is the integer blend of its two neighbours, and
// every other frame is copied.
func TestIndependentCrossfadeIsExact(t *testing.T) {
	e := newEnv(t)
	e.stitcher(t, "s1")
	spec := fmt.Sprintf(`{"id":"xfade","prompt":"x","model":"sim","mode":"MODE_INDEPENDENT","durationFrames":30,"windowFrames":12,`+
		`"overlapFrames":3,"width":%d,"height":%d,"steps":1,"fps":24,"pool":"%s"}`, w, h, e.pool)
	tasks := e.tasks(t, spec, 3)
	for _, i := range []int{1, 0, 2} {
		e.done(t, tasks[i], 1, 0)
	}
	j := e.waitJob(t, "xfade", store.JobSucceeded)
	video := map[int64]byte{} // frame → expected value
	for k, task := range tasks {
		o, kept := int(task.Overlap), int(task.Frames-task.TrimFrames)
		for i := range kept {
			at := int64(task.FirstFrame) + int64(i)
			v := pixel(k, i)
			if k > 0 && i < o { // blended with the previous segment's last o frames
				prev := tasks[k-1]
				a := pixel(k-1, int(prev.Frames-prev.TrimFrames)-o+i)
				mixed := []byte{0}
				_ = media.Crossfade(mixed, []byte{a}, []byte{v}, i, o)
				v = mixed[0]
			}
			video[at] = v
		}
	}
	want := make([]byte, len(video))
	for at, v := range video {
		want[at] = v
	}
	check(t, e.final(t, j), want)
	if j.FinalFrames != int64(len(want)) || j.TotalFrames != int64(len(want)) {
		t.Fatalf("final %d frames, plan %d, want %d", j.FinalFrames, j.TotalFrames, len(want))
	}
}

// TestFrameMismatchIsSentBack: a segment committed with a frame missing is
// caught before it is appended and redone as a new attempt; the job then
// succeeds with the whole video.
func TestFrameMismatchIsSentBack(t *testing.T) {
	e := newEnv(t)
	e.stitcher(t, "s1")
	tasks := e.chainTasks(t, "short", 3)
	e.done(t, tasks[0], 1, 0)
	e.done(t, tasks[1], 1, 4) // 6 kept frames in the plan, 4 delivered
	redo := e.nextTask(t)     // the dispatcher re-queues segment 1 as attempt 2
	if redo.Index != 1 || redo.Attempt != 2 {
		t.Fatalf("redo of segment %d attempt %d, want 1 and 2", redo.Index, redo.Attempt)
	}
	e.done(t, redo, 2, 0)
	e.done(t, tasks[2], 1, 0)
	j := e.waitJob(t, "short", store.JobSucceeded)
	check(t, e.final(t, j), expectChain(tasks))
	a, _ := e.store.ListAttempts(context.Background(), "short", 1)
	if len(a) != 2 || a[0].Outcome != store.OutcomeFailed || !strings.Contains(a[0].ErrorMsg, "FRAME MISMATCH") || a[1].Outcome != store.OutcomeDone {
		t.Fatalf("segment 1 lineage %+v", a)
	}
}

// TestResumeAfterKill: a stitcher stopped mid-job (its part buffer lost)
// is replaced by another; the video has no duplicated or missing frame.
// Parts of 5 MiB are out of reach of these tiny frames, so the resumed
// stitcher rebuilds the whole buffer from the pieces.
func TestResumeAfterKill(t *testing.T) {
	e := newEnv(t)
	stop := e.stitcher(t, "s1")
	tasks := e.chainTasks(t, "resume", 5)
	for _, task := range tasks[:3] {
		e.done(t, task, 1, 0)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps, _ := e.store.ListPieces(context.Background(), "resume", 0)
		if len(ps) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pieces appended, want 3", len(ps))
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	e.stitcher(t, "s2") // the lease of s1 must run out first (2 s)
	for _, task := range tasks[3:] {
		e.done(t, task, 1, 0)
	}
	j := e.waitJob(t, "resume", store.JobSucceeded)
	check(t, e.final(t, j), expectChain(tasks))
}

// testLog logs warnings and errors through t.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
