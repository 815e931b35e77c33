// Package stitchbench measures the stitcher for `make bench` on a devstack
// (embedded NATS, Postgres, MinIO) with an in-process dispatcher and a
// spool-stitcher process:
//
//   - finalize: a synthetic one-hour 720p chain job (3600 s × 24 fps, made
//     of real x264 fragments retimed onto the video's timeline) is
//     appended; with every segment but the last appended, the last DONE
//     is published and the time to the job's succeeded event is taken;
//   - memory: the stitcher process's peak RSS (VmHWM) over the whole job;
//   - append throughput: the job's bytes over the time to append them,
//     against a plain streaming copy of the same bytes into one object.
//
// With Sound the job has an audio track as long as its video (an audio
// intake's AAC of a sine), muxed into every piece: finalize and memory
// must stay what they are without it.
package stitchbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

// Stitch is the "stitch" object of bench/results.json.
type Stitch struct {
	FinalizeMS    float64 `json:"finalize_ms"`
	PeakRSSMB     float64 `json:"peak_rss_mb"`
	AppendMBPerS  float64 `json:"append_mb_per_s"`
	CopyMBPerS    float64 `json:"copy_mb_per_s"`
	AppendRatio   float64 `json:"append_ratio"` // append ÷ copy
	VideoS        int     `json:"video_s"`
	Segments      int     `json:"segments"`
	VideoMB       float64 `json:"video_mb"`
	AudioMB       float64 `json:"audio_mb,omitempty"` // the AAC track's packets, with Sound
	Parts         int     `json:"parts"`
	AppendSeconds float64 `json:"append_s"`
}

// Options size the run; Short is CI's smoke form (two minutes of video).
type Options struct {
	Short bool
	// StitcherBinary is a built spool-stitcher; empty builds one.
	StitcherBinary string
	// Sound gives the job an audio track as long as its video.
	Sound bool
	Log   io.Writer
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

const (
	width, height, fps = 1280, 720, 24
	window, overlap    = 121, 37
	pool               = "stitch"
	jobID              = "stitch-hour"
)

// Run runs the benchmark.
func Run(ctx context.Context, o Options) (Stitch, error) {
	seconds := 3600
	if o.Short {
		seconds = 120
	}
	bin, cleanup, err := stitcherBinary(ctx, o.StitcherBinary)
	if err != nil {
		return Stitch{}, err
	}
	defer cleanup()
	st, err := devstack.Start(ctx, devstack.Options{NATS: true, Postgres: true, MinIO: true})
	if err != nil {
		return Stitch{}, err
	}
	defer st.Stop()
	b, err := bus.Connect(ctx, st.NATSConfig())
	if err != nil {
		return Stitch{}, err
	}
	defer b.Close()
	s, err := store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 8})
	if err != nil {
		return Stitch{}, err
	}
	defer s.Close()
	bl, err := blob.New(st.S3Config())
	if err != nil {
		return Stitch{}, err
	}
	if err := bl.EnsureBucket(ctx); err != nil {
		return Stitch{}, err
	}
	d, err := dispatcher.New(ctx, dispatcher.Config{Pools: pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: time.Second,
		ReconcileEvery: time.Hour, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 8, LiveAhead: 2, OutboxBatch: 256,
		SubmitBatch: 64, SegmentDeadline: time.Hour}, b, s, slog.New(slog.DiscardHandler))
	if err != nil {
		return Stitch{}, err
	}
	dctx, stopDispatcher := context.WithCancel(ctx)
	ddone := make(chan struct{})
	go func() { _ = d.Run(dctx); close(ddone) }()
	defer func() { stopDispatcher(); <-ddone }()

	o.logf("encoding the fragments (720p, x264)")
	first, rest, err := clips(ctx)
	if err != nil {
		return Stitch{}, err
	}
	frames := seconds * fps
	spec := fmt.Sprintf(`{"id":"%s","prompt":"an hour of sea","model":"sim","resolution":"RESOLUTION_720P","durationFrames":%d,`+
		`"windowFrames":%d,"overlapFrames":%d,"steps":1,"fps":%d,"pool":"%s"}`, jobID, frames, window, overlap, fps, pool)
	m := nats.NewMsg(bus.SubjectJobSubmit)
	m.Data = []byte(spec)
	m.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	if _, err := b.JetStream().PublishMsg(ctx, m); err != nil {
		return Stitch{}, err
	}
	c, err := b.DeclarePool(ctx, pool)
	if err != nil {
		return Stitch{}, err
	}
	events, err := b.Conn().SubscribeSync(mustSubject(bus.EventsSubject(jobID)))
	if err != nil {
		return Stitch{}, err
	}
	defer events.Unsubscribe()

	// Act as the worker: each task gets its fragment and DONE (TAIL_READY
	// first, to release the next). The last DONE waits for the stitcher.
	var total int64
	var keys []blob.Key
	var last *spoolv1.SegmentResult
	for {
		msg, err := bus.FetchOne(ctx, c, 10*time.Second)
		if err != nil {
			return Stitch{}, fmt.Errorf("stitch bench: waiting for a task: %w", err)
		}
		t, err := bus.DecodeTask(msg.Data())
		if err != nil {
			return Stitch{}, err
		}
		_ = msg.Ack()
		clip, start := rest, t.FirstFrame+int64(t.Overlap)
		if t.Index == 0 {
			clip, start = first, 0
		}
		kept := int(t.Frames - t.TrimFrames)
		if t.Index > 0 {
			kept -= int(t.Overlap)
		}
		if kept != 84 && kept != 121 { // the plan's last segment may be shorter: encode it apart
			if clip, err = encodeClip(ctx, kept); err != nil {
				return Stitch{}, err
			}
		}
		r, err := upload(ctx, bl, t, clip, start)
		if err != nil {
			return Stitch{}, err
		}
		total += int64(r.Bytes)
		keys = append(keys, blob.Key(r.VideoKey))
		if t.TailFrames > 0 {
			tk, _ := blob.SegmentTail(t.JobId, t.Index, t.Attempt)
			if _, err := b.PublishResult(ctx, &spoolv1.SegmentResult{JobId: t.JobId, Index: t.Index, Attempt: t.Attempt,
				Phase: spoolv1.Phase_PHASE_TAIL_READY, Pool: pool, TailKey: string(tk)}); err != nil {
				return Stitch{}, err
			}
		} else {
			last = r
			break
		}
		if _, err := b.PublishResult(ctx, r); err != nil {
			return Stitch{}, err
		}
	}
	segments := int(last.Index) + 1
	if err := waitCommitted(ctx, s, segments-1); err != nil {
		return Stitch{}, err
	}
	var audioBytes int64
	if o.Sound {
		o.logf("taking in %d s of audio", seconds)
		if audioBytes, err = withSound(ctx, bl, st.PGDSN, seconds); err != nil {
			return Stitch{}, err
		}
	}
	// The stitcher starts on a backlog of segments-1 committed segments,
	// so that appending runs at the stitcher's pace; it runs as its own
	// process, for its RSS.
	env, err := st.ServiceEnv(bus.RoleStitcher, "", "")
	if err != nil {
		return Stitch{}, err
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(append(os.Environ(), env...), "SPOOL_LOG_LEVEL=warn", "SPOOL_STITCHER_ID=bench")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return Stitch{}, fmt.Errorf("start spool-stitcher: %w", err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	appendStart := time.Now()
	o.logf("%d segments committed; the stitcher appends %d", segments, segments-1)
	if err := waitAppended(ctx, s, segments-1); err != nil {
		return Stitch{}, err
	}
	appendTime := time.Since(appendStart)
	sent := time.Now()
	if _, err := b.PublishResult(ctx, last); err != nil {
		return Stitch{}, err
	}
	for {
		em, err := events.NextMsg(time.Minute)
		if err != nil {
			return Stitch{}, fmt.Errorf("stitch bench: no succeeded event: %w", err)
		}
		if ev, err := bus.DecodeEvent(em.Data); err == nil && ev.State == spoolv1.JobState_JOB_STATE_SUCCEEDED {
			break
		}
	}
	finalize := time.Since(sent)
	rss, err := peakRSS(cmd.Process.Pid)
	if err != nil {
		return Stitch{}, err
	}
	j, err := s.GetJob(ctx, jobID)
	if err != nil {
		return Stitch{}, err
	}
	if j.State != store.JobSucceeded || j.FinalFrames != int64(frames) {
		return Stitch{}, fmt.Errorf("stitch bench: job %s with %d frames, want succeeded with %d", j.State, j.FinalFrames, frames)
	}
	stitch, err := s.GetStitch(ctx, jobID)
	if err != nil {
		return Stitch{}, err
	}
	copyRate, err := copyRate(ctx, bl, keys)
	if err != nil {
		return Stitch{}, err
	}
	mb := float64(total) / (1 << 20)
	res := Stitch{FinalizeMS: ms(finalize), PeakRSSMB: rss, AppendMBPerS: mb / appendTime.Seconds(), CopyMBPerS: copyRate,
		VideoS: seconds, Segments: segments, VideoMB: mb, Parts: len(stitch.Parts), AppendSeconds: appendTime.Seconds(),
		AudioMB: float64(audioBytes) / (1 << 20)}
	res.AppendRatio = res.AppendMBPerS / res.CopyMBPerS
	o.logf("stitch: %+v", res)
	return res, nil
}

// waitAppended waits until the job's preview holds n segments.
func waitAppended(ctx context.Context, s *store.Store, n int) error {
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		ps, err := s.ListPieces(ctx, jobID, max(n-1, 0))
		if err != nil {
			return err
		}
		if len(ps) > 0 && ps[len(ps)-1].Index >= n-1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("stitch bench: %d segments not appended in time", n)
}

// waitCommitted waits until n segments are done in Postgres.
func waitCommitted(ctx context.Context, s *store.Store, n int) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		done, err := s.CountSegments(ctx, store.SegDone)
		if err != nil {
			return err
		}
		if done >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("stitch bench: %d segments not committed in time", n)
}

// upload retimes a clip onto the task's place and uploads it as the
// task's fragment; it returns the DONE to publish.
func upload(ctx context.Context, bl *blob.Store, t *spoolv1.SegmentTask, clip []byte, start int64) (*spoolv1.SegmentResult, error) {
	c, err := media.Retime(clip, fps, start, t.Index+1)
	if err != nil {
		return nil, err
	}
	key, err := blob.SegmentVideo(t.JobId, t.Index, t.Attempt, "mp4")
	if err != nil {
		return nil, err
	}
	data := append(c.Init, c.Media...)
	info, err := bl.Put(ctx, key, bytes.NewReader(data), int64(len(data)), blob.PutOptions{ContentType: "video/mp4"})
	if err != nil {
		return nil, err
	}
	return &spoolv1.SegmentResult{JobId: t.JobId, Index: t.Index, Attempt: t.Attempt, Phase: spoolv1.Phase_PHASE_DONE, Pool: pool,
		VideoKey: string(key), Sha256: info.SHA256, Bytes: uint64(info.Size), Frames: uint32(c.Frames), WorkerId: "bench"}, nil
}

// clips encodes the two fragments every segment is made of: 121 frames
// (segment 0) and 84 (the others, their overlap dropped).
func clips(ctx context.Context) (first, rest []byte, err error) {
	if first, err = encodeClip(ctx, window); err != nil {
		return nil, nil, err
	}
	rest, err = encodeClip(ctx, window-overlap)
	return first, rest, err
}

// encodeClip encodes n frames of a moving plasma at 720p with the workers'
// codec: real x264 output of a realistic size.
func encodeClip(ctx context.Context, n int) ([]byte, error) {
	var out bytes.Buffer
	e, err := media.NewEncoder(ctx, &out, media.EncodeOptions{Width: width, Height: height, FPS: fps, Codec: media.H264()})
	if err != nil {
		return nil, err
	}
	f := make([]byte, width*height*3)
	for i := range n {
		t := float64(i) / fps
		for y := range height {
			for x := range width {
				v := math.Sin(float64(x)/40+t) + math.Sin(float64(y)/30-t*1.3) + math.Sin(float64(x+y)/60+t*0.7)
				p := (y*width + x) * 3
				f[p], f[p+1], f[p+2] = byte(128+40*v), byte(128+40*math.Sin(v+t)), byte(128+40*math.Cos(v-t))
			}
		}
		if err := e.WriteFrame(f); err != nil {
			_ = e.Close()
			return nil, err
		}
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// copyRate streams the same fragments into one object, as a plain copy
// through this host would, and returns its MB/s.
func copyRate(ctx context.Context, bl *blob.Store, keys []blob.Key) (float64, error) {
	start := time.Now()
	w := bl.NewWriter(ctx, blob.Key("jobs/"+jobID+"/copy.mp4"), blob.PutOptions{ContentType: "video/mp4"})
	var n int64
	for _, k := range keys {
		r, _, err := bl.Get(ctx, k)
		if err != nil {
			w.Abort(err)
			return 0, err
		}
		m, err := io.Copy(w, r)
		r.Close()
		if err != nil {
			w.Abort(err)
			return 0, err
		}
		n += m
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
}

// peakRSS reads a process's peak resident set (VmHWM), in MB.
func peakRSS(pid int) (float64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("stitch bench: peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("stitch bench: VmHWM %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("stitch bench: no VmHWM for process %d", pid)
}

// stitcherBinary returns bin, or builds cmd/spool-stitcher.
func stitcherBinary(ctx context.Context, bin string) (string, func(), error) {
	if bin != "" {
		return bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "spool-stitch-bench")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	bin = filepath.Join(dir, "spool-stitcher")
	pkg := "./services/stitcher/cmd/spool-stitcher"
	if _, err := os.Stat(pkg); err != nil {
		pkg = "./cmd/spool-stitcher" // run from services/stitcher
	}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("build spool-stitcher: %w\n%s", err, out)
	}
	return bin, cleanup, nil
}

func mustSubject(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
