package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/gateway/gateway"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// api is the gateway over the whole system: dispatcher, a worker with two
// ref slots and the stitcher, on the real stack. Its pool is the test's
// own: work that other tests' packages queue on the shared stack at the
// same time (hundreds of jobs on "default") never delays its jobs.
func api(t *testing.T) *httptest.Server {
	t.Helper()
	pool := fmt.Sprintf("gw-%d", time.Now().UnixNano()%1e9)
	return apiOver(t, pool+":ref,sim", worker.Config{ID: pool, Pool: pool, Models: []string{"ref", "sim"}, Slots: 2, Heartbeat: time.Second})
}

// apiOver is the gateway over a dispatcher feeding pools (as
// SPOOL_DISPATCHER_POOLS, and the gateway's too), the stitcher and the
// worker wk, on the real stack; tune changes the gateway's configuration.
func apiOver(t *testing.T, pools string, wk worker.Config, tune ...func(*gateway.Config)) *httptest.Server {
	t.Helper()
	c := devstacktest.Connect(t, 0)
	ctx := context.Background()
	b, s, bl := c.Bus, c.Store, c.Blob
	d, err := dispatcher.New(ctx, dispatcher.Config{Pools: pools, MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond,
		ReconcileEvery: time.Hour, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 16, LiveAhead: 2, OutboxBatch: 64,
		SubmitBatch: 16, SegmentDeadline: time.Minute}, b, s, quiet())
	if err != nil {
		t.Fatal(err)
	}
	sti, err := stitcher.New(stitcher.Config{ID: wk.ID, PartSize: blob.MinPartSize, OpenJobs: 4, Parallel: 4, Lease: 5 * time.Second,
		LiveWindow: 3, Codec: "h264", Sweep: time.Second}, b, s, bl, quiet())
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(wk, b, bl, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	for _, run := range []func(context.Context) error{d.Run, sti.Run, w.Run} {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = run(rctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	cfg := gateway.Config{Pools: pools, MaxBody: 4096}
	for _, f := range tune {
		f(&cfg)
	}
	return newGateway(t, cfg, c)
}

// call sends a request to srv, with the test's admin key when auth is
// set, and decodes its JSON answer; a redirect is not followed.
func call(t *testing.T, srv *httptest.Server, method, path, body string, auth bool) (*http.Response, map[string]any) {
	t.Helper()
	ctx := context.Background()
	if !auth {
		ctx = withoutKey(ctx)
	}
	req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	c := &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp, v
}

// TestAPI walks a job through the API: submit, follow its events to the
// end, read status, lineage and the job list, download the video; and
// checks auth, bad input and the error bodies.
func TestAPI(t *testing.T) {
	srv := api(t)
	if r, v := call(t, srv, "GET", "/health", "", false); r.StatusCode != 200 || v["ok"] != true {
		t.Fatalf("health %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/jobs", "", false); r.StatusCode != 401 || v["code"] != "unauthenticated" {
		t.Fatalf("no token: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "POST", "/generate", `{"prompt":"x","durationFrames":20,"fps":500}`, true); r.StatusCode != 400 ||
		v["code"] != "invalid_argument" || v["field"] != "fps" || !strings.Contains(v["message"].(string), "allowed") {
		t.Fatalf("bad fps: %d %v", r.StatusCode, v)
	}
	// Media inputs are upload ids, looked up before the job is submitted.
	for _, c := range []struct{ spec, field, says string }{
		{`{"prompt":"x","durationFrames":20,"image":"up-missing"}`, "image", "there is none with this id"},
		{`{"prompt":"x","durationFrames":20,"video":"../other/final.mp4"}`, "video", "the id of an upload"},
		{`{"prompt":"x","durationFrames":20,"includeInput":true}`, "include_input", "unless video"},
	} {
		if r, v := call(t, srv, "POST", "/generate", c.spec, true); r.StatusCode != 400 || v["field"] != c.field ||
			!strings.Contains(v["message"].(string), c.says) {
			t.Fatalf("%s: %d %v", c.spec, r.StatusCode, v)
		}
	}
	if r, v := call(t, srv, "POST", "/generate?tenant=acme", `{"prompt":"x","durationFrames":20,"tenant":"beta"}`, true); r.StatusCode != 400 || v["field"] != "tenant" {
		t.Fatalf("a spec's tenant other than ?tenant=: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "POST", "/generate?tenant=acme", `{"prompt":"x","durationFrames":20,"image":"up-missing"}`, true); r.StatusCode != 400 ||
		!strings.Contains(v["message"].(string), "tenant acme") {
		t.Fatalf("?tenant= is the job's tenant: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "POST", "/generate", `{"prompt":"`+strings.Repeat("x", 5000)+`"}`, true); r.StatusCode != 413 {
		t.Fatalf("big body: %d %v", r.StatusCode, v)
	}
	if r, _ := call(t, srv, "POST", "/generate", `{not json`, true); r.StatusCode != 400 {
		t.Fatalf("malformed body: %d", r.StatusCode)
	}
	r, v := call(t, srv, "POST", "/generate", `{"id":"api-job","prompt":"a lighthouse at dusk","durationFrames":30,"windowFrames":13,`+
		`"overlapFrames":4,"width":96,"height":64,"steps":3,"fps":24}`, true)
	if r.StatusCode != 202 || v["id"] != "api-job" || v["status_url"] != "/status/api-job" {
		t.Fatalf("generate: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/download/api-job", "", true); r.StatusCode != 302 &&
		(r.StatusCode != 404 || v["code"] != "not_ready" || r.Header.Get("Retry-After") == "") {
		t.Fatalf("download while running: %d %v", r.StatusCode, v)
	}
	// Server-Sent Events until the job ends.
	req, _ := http.NewRequest("GET", srv.URL+"/jobs/api-job/events", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	var last map[string]any
	events := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events++
			_ = json.Unmarshal([]byte(data), &last)
		}
	}
	resp.Body.Close()
	if events < 2 || last["state"] != "succeeded" {
		t.Fatalf("%d events, the last %v", events, last)
	}
	if r, v := call(t, srv, "GET", "/status/api-job", "", true); r.StatusCode != 200 || v["state"] != "succeeded" ||
		v["segments_done"] != float64(3) || !strings.HasPrefix(fmt.Sprint(v["download_url"]), "/download/api-job?exp=") {
		t.Fatalf("status %d %v", r.StatusCode, v)
	}
	r, _ = call(t, srv, "GET", "/download/api-job", "", true)
	if r.StatusCode != 302 {
		t.Fatalf("download: %d", r.StatusCode)
	}
	video, err := http.Get(r.Header.Get("Location"))
	if err != nil || video.StatusCode != 200 {
		t.Fatalf("presigned GET: %v %v", err, video)
	}
	data, _ := io.ReadAll(video.Body)
	video.Body.Close()
	if len(data) < 100 || string(data[4:8]) != "ftyp" {
		t.Fatalf("the download is %d bytes, not an MP4", len(data))
	}
	if r, v := call(t, srv, "GET", "/jobs/api-job/lineage", "", true); r.StatusCode != 200 || len(v["segments"].([]any)) != 3 {
		t.Fatalf("lineage %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/jobs?limit=1", "", true); r.StatusCode != 200 || len(v["jobs"].([]any)) != 1 {
		t.Fatalf("jobs %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/jobs?state=succeeded&limit=1", "", true); r.StatusCode != 200 || len(v["jobs"].([]any)) != 1 {
		t.Fatalf("succeeded jobs %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "POST", "/generate", `{"prompt":"x","resolution":"RESOLUTION_480P"}`, true); r.StatusCode != 400 ||
		v["field"] != "resolution" || !strings.Contains(fmt.Sprint(v["message"]), "RESOLUTION_720P") {
		t.Fatalf("a resolution that does not exist: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/no/such/route", "", true); r.StatusCode != 404 || v["code"] != "not_found" {
		t.Fatalf("an unknown route: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "DELETE", "/jobs", "", true); r.StatusCode != 405 || v["code"] != "method_not_allowed" ||
		r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("DELETE /jobs: %d %v (Allow %q)", r.StatusCode, v, r.Header.Get("Allow"))
	}
	if r, v := call(t, srv, "GET", "/jobs?state=bogus", "", true); r.StatusCode != 400 || v["field"] != "state" ||
		!strings.Contains(fmt.Sprint(v["message"]), "queued, running, succeeded, failed, cancelled, rejected") {
		t.Fatalf("a state that does not exist: %d %v", r.StatusCode, v)
	}
	if r, _ := call(t, srv, "GET", "/jobs/api-job/hls/index.m3u8", "", true); r.StatusCode != 200 {
		t.Fatalf("preview playlist: %d", r.StatusCode)
	}
	if r, v := call(t, srv, "POST", "/jobs/api-job/cancel", "", true); r.StatusCode != 409 {
		t.Fatalf("cancel of a finished job: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/status/nope", "", true); r.StatusCode != 404 || v["code"] != "not_found" {
		t.Fatalf("unknown job: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/status/api-job", "", true); r.StatusCode != 200 || !strings.HasPrefix(v["video_url"].(string), "http") {
		t.Fatalf("status without a video_url: %v", v)
	}
	for path, want := range map[string]string{"/": "/ui/app.js", "/ui/app.js": "new Hls(", "/ui/app.css": "timeline"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("dashboard %s: %d, %d bytes without %q", path, resp.StatusCode, len(body), want)
		}
	}
	if r, _ := call(t, srv, "GET", "/ui/nope.js", "", false); r.StatusCode != 404 {
		t.Fatalf("a missing dashboard file: %d", r.StatusCode)
	}
	if r, v := call(t, srv, "GET", "/models/info", "", true); r.StatusCode != 200 || len(v["models"].([]any)) == 0 {
		t.Fatalf("models %d %v", r.StatusCode, v)
	}
}

// TestStatusShowsCueLandings: /status says where each cue of a job's
// timeline really takes effect: the segment boundary nearest to it.
func TestStatusShowsCueLandings(t *testing.T) {
	srv := api(t)
	// Windows of 13 frames overlapping by 4: boundaries at 0, 13, 22, 31, …
	// At 24 fps, 0.75 s is frame 18, nearest to 22; 1.2 s is frame 29, to 31.
	r, v := call(t, srv, "POST", "/generate", `{"id":"cues-job","timeline":[{"fromS":0,"prompt":"dusk"},{"fromS":0.75,"prompt":"night"},`+
		`{"fromS":1.2,"prompt":"dawn"}],"durationFrames":40,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":2,"fps":24}`, true)
	if r.StatusCode != 202 {
		t.Fatalf("generate: %d %v", r.StatusCode, v)
	}
	r, v = call(t, srv, "GET", "/status/cues-job", "", true)
	want := []any{
		map[string]any{"prompt": "dusk", "requested_frame": 0.0, "requested_s": 0.0, "landed_frame": 0.0, "landed_s": 0.0, "segment": 0.0},
		map[string]any{"prompt": "night", "requested_frame": 18.0, "requested_s": 0.75, "landed_frame": 22.0, "landed_s": 0.917, "segment": 2.0},
		map[string]any{"prompt": "dawn", "requested_frame": 29.0, "requested_s": 1.208, "landed_frame": 31.0, "landed_s": 1.292, "segment": 3.0},
	}
	if r.StatusCode != 200 || !reflect.DeepEqual(v["cues"], want) {
		t.Fatalf("status %d: cues %v, want %v", r.StatusCode, v["cues"], want)
	}
	if r, v := call(t, srv, "POST", "/generate", `{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":0.2,"prompt":"b"}],"durationFrames":40,`+
		`"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":2,"fps":24}`, true); r.StatusCode != 400 ||
		v["field"] != "timeline[1].from_s" || !strings.Contains(v["message"].(string), "segment boundary") {
		t.Fatalf("a cue without a boundary of its own: %d %v", r.StatusCode, v)
	}
}
