package apifuzz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/gateway/gateway"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// world is the gateway under test and the real objects it holds, whose
// ids the fuzzer mixes into those it generates, so that it reaches past
// "not found": a finished job with its video and preview, a deleted one, a
// queued one, one with audio and its waveform, a ready and a pending
// upload, and a batch.
type world struct {
	url                    string
	jobs, uploads, batches []string // ids
	files                  []string // preview files of the finished job
}

// pools are the gateway's and the dispatcher's pools.
const pools = "default:ref,ref-talk,sim"

// newWorld starts a dispatcher, a stitcher and the gateway on the real
// stack, and makes the world's objects through the API. A worker runs
// only while the finished jobs are made: whatever the fuzzer submits
// stays queued (a spec of a day of 1080p costs nothing).
func newWorld(t *testing.T) world {
	t.Helper()
	c := devstacktest.Connect(t, 0)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := dispatcher.New(context.Background(), dispatcher.Config{Pools: pools, MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond,
		ReconcileEvery: time.Hour, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 16, LiveAhead: 2, OutboxBatch: 64,
		SubmitBatch: 16, SegmentDeadline: time.Minute}, c.Bus, c.Store, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sti, err := stitcher.New(stitcher.Config{ID: "apifuzz", PartSize: blob.MinPartSize, OpenJobs: 4, Parallel: 4, Lease: 5 * time.Second,
		LiveWindow: 3, Codec: "h264", Sweep: time.Second}, c.Bus, c.Store, c.Blob, quiet)
	if err != nil {
		t.Fatal(err)
	}
	wk, err := worker.New(worker.Config{ID: "apifuzz", Pool: "default", Models: []string{"ref", "sim"}, Slots: 2, Heartbeat: time.Second},
		c.Bus, c.Blob, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := run(t, wk.Run)
	t.Cleanup(wk.Close)
	run(t, d.Run)
	run(t, sti.Run)
	g, err := gateway.New(gateway.Config{Pools: pools, MaxBody: 1 << 20, URLKey: config.Secret(devstacktest.URLKey()),
		Uploads: gateway.UploadConfig{MaxBytes: 64 << 20, Probe: time.Minute}}, c.Bus, c.Store, c.Blob, quiet)
	if err != nil {
		t.Fatal(err)
	}
	adminKey = devstacktest.AdminKey(t, c.Store)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	w := world{url: srv.URL, files: []string{"index.m3u8", "init.mp4", "0.m4s", "1.m4s", "in0.m4s"}}

	const spec = `{"id":%q,"prompt":"a lighthouse at dusk","durationFrames":22,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":2,"fps":24}`
	for _, id := range []string{"fz-done", "fz-deleted"} {
		w.call(t, "POST", "/generate", fmt.Sprintf(spec, id), http.StatusAccepted)
	}
	for _, id := range []string{"fz-done", "fz-deleted"} {
		w.await(t, id, "succeeded")
	}
	stopWorker()
	w.call(t, "DELETE", "/jobs/fz-deleted", "", http.StatusOK)
	w.call(t, "POST", "/generate", fmt.Sprintf(spec, "fz-queued"), http.StatusAccepted)
	w.await(t, "fz-queued", "queued")
	w.jobs = []string{"fz-done", "fz-deleted", "fz-queued", audioJob(t, c)}

	for _, up := range []struct{ body, ctype string }{{string(picture(t)), "image/png"}, {`{"bytes":1000,"content_type":"video/mp4"}`, "application/json"}} {
		var v struct{ ID string }
		if err := json.Unmarshal(w.call(t, "POST", "/uploads", up.body, http.StatusCreated, "Content-Type", up.ctype), &v); err != nil || v.ID == "" {
			t.Fatalf("upload of %s: %q %v", up.ctype, v.ID, err)
		}
		w.uploads = append(w.uploads, v.ID)
	}
	w.call(t, "POST", "/batches?id=fz-batch", `[{"prompt":"a","durationFrames":5},{"prompt":""}]`, http.StatusMultiStatus,
		"Content-Type", "application/json")
	w.batches = []string{"fz-batch"}
	return w
}

// run runs f until the test ends or the returned stop is called.
func run(t *testing.T, f func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// call sends a request with the harness's Authorization and the headers
// given as name, value pairs, and fails t unless the answer has status
// want; it returns the body.
func (w world) call(t *testing.T, method, path, body string, want int, headers ...string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, w.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization())
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
	}
	return out
}

// await polls job id's status until it is in state, for a minute at most.
func (w world) await(t *testing.T, id, state string) {
	t.Helper()
	var v struct{ State string }
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if err := json.Unmarshal(w.call(t, "GET", "/status/"+id, "", http.StatusOK), &v); err != nil {
			t.Fatal(err)
		}
		if v.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s after a minute, want %s", id, v.State, state)
		}
	}
}

// audioJob records a queued talking-head job of the default tenant with
// the waveform of its audio, as intake leaves one, and returns its id.
func audioJob(t *testing.T, c devstacktest.Clients) string {
	t.Helper()
	ctx := context.Background()
	const id = "fz-talk"
	audio, ref := blob.NewUploadID(), blob.NewUploadID()
	key, err := blob.UploadDerived("default", audio, "audio-16000", media.PeaksName)
	if err != nil {
		t.Fatal(err)
	}
	peaks := bytes.Repeat([]byte{0, 64, 255, 128}, 60)
	if _, err := c.Blob.Put(ctx, key, bytes.NewReader(peaks), int64(len(peaks)), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	j := store.Job{ID: id, Tenant: "default", Priority: 5, Pool: "default", Model: "ref-talk", Mode: "chain", State: store.JobQueued,
		Spec: fmt.Appendf(nil, `{"prompt":"a reading","model":"ref-talk","audio":%q,"reference":%q,"fit":"FIT_PAD"}`, audio, ref),
		FPS:  24, Width: 96, Height: 64, TotalFrames: 48, SegmentsTotal: 2, WaveformKey: string(key)}
	if _, err := c.Store.CreateJob(ctx, store.NewJob{Job: j}); err != nil {
		t.Fatal(err)
	}
	return id
}

// picture is a small PNG.
func picture(t *testing.T) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 32, 24))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
