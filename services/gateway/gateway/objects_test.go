package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// objectsAPI is the gateway alone over the real stack, in dev mode.
func objectsAPI(t *testing.T) (*httptest.Server, devstacktest.Clients) {
	t.Helper()
	c := devstacktest.Connect(t, 0)
	return newGateway(t, gateway.Config{Pools: "default:ref,sim", MaxBody: 4096}, c), c
}

// createJob records a job in the given state and returns its id, name
// with a suffix of its own (the database outlives one run of the test).
func createJob(t *testing.T, s *store.Store, name string, state store.JobState) string {
	t.Helper()
	ctx := context.Background()
	id := name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := s.CreateJob(ctx, store.NewJob{Job: store.Job{ID: id, Tenant: "default", Priority: 5, Pool: "default", Model: "ref",
		Mode: "chain", State: store.JobQueued, FPS: 24, Width: 96, Height: 64, TotalFrames: 48, SegmentsTotal: 2}}); err != nil {
		t.Fatal(err)
	}
	if state != store.JobQueued {
		if ok, err := s.SetJobState(ctx, id, []store.JobState{store.JobQueued}, state); err != nil || !ok {
			t.Fatalf("job %s to %s: %v %v", id, state, ok, err)
		}
	}
	return id
}

// TestObjectsServedWhole: while a writer overwrites a preview file in a
// loop, as the stitcher does its playlist, many GETs through the gateway
// each get one whole version (its bytes, Content-Length matching; a range
// of one version for a Range request) or a clear error status, never an
// empty or truncated 200. Small files are read whole before the answer
// starts; large ones are streamed pinned to one version.
func TestObjectsServedWhole(t *testing.T) {
	srv, c := objectsAPI(t)
	job := createJob(t, c.Store, "whole", store.JobRunning)
	playlist, _ := blob.HLSPlaylist(job)
	init, _ := blob.HLSInit(job)
	segment, _ := blob.HLSSegment(job, 7)
	cases := []struct {
		name    string
		file    string
		key     blob.Key
		sizes   []int // of the versions written in turn
		rng     string
		readers int
		gets    int // per reader
	}{
		{name: "playlist", file: "index.m3u8", key: playlist, sizes: []int{180, 950, 3100, 40 << 10}, readers: 8, gets: 60},
		{name: "init", file: "init.mp4", key: init, sizes: []int{700, 1200}, readers: 6, gets: 40},
		{name: "large segment", file: "7.m4s", key: segment, sizes: []int{3 << 20, 2<<20 + 17, 5<<20 - 3}, readers: 3, gets: 20},
		{name: "large segment, range", file: "7.m4s", key: segment, sizes: []int{3 << 20, 2<<20 + 17}, rng: "bytes=1000-1500000",
			readers: 3, gets: 20},
		{name: "playlist, suffix range", file: "index.m3u8", key: playlist, sizes: []int{500, 2000}, rng: "bytes=-300",
			readers: 6, gets: 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			versions := make([][]byte, len(tc.sizes))
			for i, n := range tc.sizes {
				versions[i] = make([]byte, n)
				_, _ = rand.Read(versions[i])
			}
			ctx, stop := context.WithCancel(context.Background())
			put := func(v []byte) error {
				_, err := c.Blob.Put(ctx, tc.key, bytes.NewReader(v), int64(len(v)), blob.PutOptions{})
				return err
			}
			if err := put(versions[0]); err != nil {
				t.Fatal(err)
			}
			writes := 0
			wrote := make(chan error, 1)
			go func() {
				for i := 1; ; i++ {
					if ctx.Err() != nil {
						wrote <- nil
						return
					}
					if err := put(versions[i%len(versions)]); err != nil && ctx.Err() == nil {
						wrote <- err
						return
					}
					writes++
				}
			}()
			var mu sync.Mutex
			var bad, refused []string
			whole := 0
			var wg sync.WaitGroup
			for range tc.readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range tc.gets {
						verdict, ok := get(srv.URL+"/jobs/"+job+"/hls/"+tc.file, tc.rng, versions)
						mu.Lock()
						switch {
						case !ok:
							bad = append(bad, verdict)
						case verdict == "whole":
							whole++
						default:
							refused = append(refused, verdict)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			stop()
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			t.Logf("%d versions written, %d whole answers, %d refused %q", writes, whole, len(refused), refused[:min(len(refused), 3)])
			if len(bad) > 0 {
				t.Fatalf("%d of %d answers neither whole nor refused, e.g. %q", len(bad), tc.readers*tc.gets, bad[:min(len(bad), 5)])
			}
			if whole == 0 {
				t.Fatal("no whole answer at all")
			}
		})
	}
}

// get fetches url (with a Range header when rng is set) and judges the
// answer: "whole" for a 200 or 206 that carries all of one version (or
// the asked range of one version) with a matching Content-Length, a status
// line for a clear error answer, ok = false otherwise.
func get(url, rng string, versions [][]byte) (verdict string, ok bool) {
	req, _ := http.NewRequest("GET", url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "request: " + err.Error(), false
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode != 200 && resp.StatusCode != 206:
		var e struct{ Code string }
		if rerr != nil || json.Unmarshal(body, &e) != nil || e.Code == "" || resp.StatusCode < 400 {
			return fmt.Sprintf("%d without an error body: %q", resp.StatusCode, body), false
		}
		return resp.Status + " " + e.Code, true
	case rerr != nil:
		return fmt.Sprintf("%d, %d bytes, then %v", resp.StatusCode, len(body), rerr), false
	case resp.Header.Get("Content-Length") != strconv.Itoa(len(body)):
		return fmt.Sprintf("%d, Content-Length %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Length"), len(body)), false
	}
	for _, v := range versions {
		want, ok := v, true
		if resp.StatusCode == 206 {
			want, ok = ranged(v, rng, resp.Header.Get("Content-Range"))
		}
		if ok && bytes.Equal(body, want) {
			return "whole", true
		}
	}
	return fmt.Sprintf("%d, %d bytes (Content-Range %q) of no version written", resp.StatusCode, len(body), resp.Header.Get("Content-Range")), false
}

// ranged is the part of v that a single byte range rng asks for, if the
// Content-Range cr describes it in v.
func ranged(v []byte, rng, cr string) ([]byte, bool) {
	spec := strings.TrimPrefix(rng, "bytes=")
	a, b, _ := strings.Cut(spec, "-")
	n := int64(len(v))
	var first, last int64
	if a == "" {
		k, _ := strconv.ParseInt(b, 10, 64)
		first, last = max(n-k, 0), n-1
	} else {
		first, _ = strconv.ParseInt(a, 10, 64)
		last = n - 1
		if b != "" {
			l, _ := strconv.ParseInt(b, 10, 64)
			last = min(l, n-1)
		}
	}
	if first > last || cr != fmt.Sprintf("bytes %d-%d/%d", first, last, n) {
		return nil, false
	}
	return v[first : last+1], true
}

// TestObjectsNotReady: a preview file or video that is not made yet is
// "not yet" (404 not_ready with Retry-After) while its job runs, "not
// found" once the job has ended or for a job that does not exist; never
// 503, which says a dependency is down.
func TestObjectsNotReady(t *testing.T) {
	srv, c := objectsAPI(t)
	early := createJob(t, c.Store, "early", store.JobRunning)
	over := createJob(t, c.Store, "over", store.JobCancelled)
	cases := []struct {
		path  string
		code  int
		error string
		retry bool
	}{
		{path: "/jobs/" + early + "/hls/index.m3u8", code: 404, error: "not_ready", retry: true},
		{path: "/jobs/" + early + "/hls/init.mp4", code: 404, error: "not_ready", retry: true},
		{path: "/jobs/" + early + "/hls/3.m4s", code: 404, error: "not_ready", retry: true},
		{path: "/jobs/" + early + "/hls/in2.m4s", code: 404, error: "not_ready", retry: true},
		{path: "/jobs/" + early + "/hls/in+2.m4s", code: 404, error: "not_found"},
		{path: "/jobs/" + early + "/hls/inx.m4s", code: 404, error: "not_found"},
		{path: "/download/" + early, code: 404, error: "not_ready", retry: true},
		{path: "/jobs/" + over + "/hls/index.m3u8", code: 404, error: "not_found"},
		{path: "/download/" + over, code: 409, error: "failed_precondition"},
		{path: "/jobs/no-such-job/hls/index.m3u8", code: 404, error: "not_found"},
		{path: "/jobs/" + early + "/hls/x.ts", code: 404, error: "not_found"},
		{path: "/status/no-such-job", code: 404, error: "not_found"},
		{path: "/jobs/no-such-job/lineage", code: 404, error: "not_found"},
		{path: "/jobs/no-such-job/events", code: 404, error: "not_found"},
		{path: "/download/no-such-job", code: 404, error: "not_found"},
	}
	// An extension's kept input is served as in<k>.m4s, its object's bytes.
	in1, _ := blob.HLSInputSegment(early, 1)
	if _, err := c.Blob.Put(context.Background(), in1, strings.NewReader("input fragment 1"), 16, blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if resp, err := client.Get(srv.URL + "/jobs/" + early + "/hls/in1.m4s"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "input fragment 1" || resp.Header.Get("Content-Type") != "video/iso.segment" {
			t.Fatalf("in1.m4s: %s %q %s", resp.Status, b, resp.Header.Get("Content-Type"))
		}
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := client.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Code, Message string }
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.code || e.Code != tc.error || e.Message == "" {
				t.Fatalf("%s %q %q, want %d %s", resp.Status, e.Code, e.Message, tc.code, tc.error)
			}
			if got := resp.Header.Get("Retry-After"); (got != "") != tc.retry {
				t.Fatalf("Retry-After %q, want one: %v", got, tc.retry)
			}
		})
	}
}

// TestPreviewOnlyOnceMade: /status offers preview_url only once the
// stitcher has written the playlist, though a segment is committed before,
// so that a player (the dashboard's) asks only for what exists; then the
// playlist is served, to its signed URL.
func TestPreviewOnlyOnceMade(t *testing.T) {
	srv, c := objectsAPI(t)
	ctx := context.Background()
	id := createJob(t, c.Store, "preview", store.JobQueued)
	if err := c.Store.AppendSegments(ctx, id, []store.Segment{{Index: 0, Frames: 24, Pool: "default", Task: []byte{}},
		{Index: 1, FirstFrame: 24, Frames: 24, Pool: "default", Task: []byte{}}}); err != nil {
		t.Fatal(err)
	}
	if done, err := c.Store.CommitDoneBatch(ctx, []store.SegmentDone{{JobID: id, Index: 0, Attempt: 1, Frames: 24}}, nil); err != nil || !done[0] {
		t.Fatalf("commit: %v %v", done, err)
	}
	status := func() map[string]any {
		r, v := call(t, srv, "GET", "/status/"+id, "", true)
		if r.StatusCode != 200 || v["segments_done"] != float64(1) {
			t.Fatalf("status %d %v", r.StatusCode, v)
		}
		return v
	}
	if v := status(); v["preview_url"] != nil {
		t.Fatalf("preview_url %v before the playlist exists", v["preview_url"])
	}
	key, _ := blob.HLSPlaylist(id)
	const m3u8 = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n"
	if _, err := c.Blob.Put(ctx, key, strings.NewReader(m3u8), int64(len(m3u8)), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	url, _ := status()["preview_url"].(string)
	if !strings.HasPrefix(url, "/jobs/"+id+"/hls/index.m3u8?exp=") {
		t.Fatalf("preview_url %q once the playlist exists", url)
	}
	resp, err := client.Get(srv.URL + url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != m3u8 || resp.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" ||
		resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("the playlist: %s %q %v", resp.Status, body, resp.Header)
	}
}
