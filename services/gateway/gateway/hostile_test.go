package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// TestHostileInputIsNo5xx: ids and query values that no job, batch, upload
// or tenant can have (a NUL or bytes that are not UTF-8, which Postgres
// refuses to hold, dots, a slash, capitals, one too long) are
// answered on every route that takes them with a 4xx and the API's error
// body, never with a 5xx: the gateway refuses them before it asks Postgres
// or MinIO.
func TestHostileInputIsNo5xx(t *testing.T) {
	c := devstacktest.Connect(t, 0)
	g, err := gateway.New(testConfig(gateway.Config{Pools: "default:ref,sim,ref-talk", MaxBody: 4096}), c.Bus, c.Store, c.Blob, quiet())
	if err != nil {
		t.Fatal(err)
	}
	h, key := g.Handler(), devstacktest.AdminKey(t, c.Store) // an admin's: every route is reached past its key
	for _, bad := range []string{"\x00", "a\x00b", "\xc3\x28", "\xff", "a..b", "a/b", "A", "é", strings.Repeat("a", 65), "up-\x00"} {
		id := url.PathEscape(bad)
		q := url.QueryEscape(bad)
		for _, req := range []string{
			"GET /status/" + id, "GET /download/" + id, "GET /jobs/" + id + "/events", "POST /jobs/" + id + "/cancel",
			"GET /jobs/" + id + "/lineage", "GET /jobs/" + id + "/waveform", "GET /jobs/" + id + "/hls/index.m3u8",
			"GET /jobs/fz/hls/" + id, "DELETE /jobs/" + id, "GET /batches/" + id, "GET /uploads/" + id,
			"POST /uploads/" + id + "/complete", "GET /uploads/up-a?tenant=" + q, "GET /jobs?tenant=" + q,
			"GET /jobs?after=2026-01-01T00:00:00Z~" + q, "GET /jobs?state=" + q, "GET /jobs/fz/waveform?tenant=" + q,
			"POST /batches?id=" + q, "POST /batches?tenant=" + q, "POST /generate?tenant=" + q, "POST /uploads?tenant=" + q,
		} {
			method, target, _ := strings.Cut(req, " ")
			r := httptest.NewRequest(method, target, strings.NewReader(`[{"prompt":"a","durationFrames":5}]`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+key)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var body struct{ Code, Message string }
			if w.Code < 400 || w.Code >= 500 || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Code == "" || body.Message == "" {
				t.Errorf("%s %q: %d %s", method, target, w.Code, w.Body)
			}
		}
	}
}

// TestRangeOutsideFileIsAnAPIError: a Range past a preview file's end is
// 416 with Content-Range and the API's JSON error, not http.ServeContent's
// plain text.
func TestRangeOutsideFileIsAnAPIError(t *testing.T) {
	c := devstacktest.Connect(t, 0)
	g, err := gateway.New(testConfig(gateway.Config{Pools: "default:ref,sim,ref-talk", MaxBody: 4096}), c.Bus, c.Store, c.Blob, quiet())
	if err != nil {
		t.Fatal(err)
	}
	admin := devstacktest.AdminKey(t, c.Store)
	job := createJob(t, c.Store, "range-job", store.JobRunning) // a preview file is a job's
	key, err := blob.HLSPlaylist(job)
	if err != nil {
		t.Fatal(err)
	}
	const playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n"
	if _, err := c.Blob.Put(context.Background(), key, strings.NewReader(playlist), int64(len(playlist)), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/jobs/"+job+"/hls/index.m3u8", nil)
	r.Header.Set("Range", "bytes=1000-2000")
	r.Header.Set("Authorization", "Bearer "+admin)
	w := httptest.NewRecorder()
	g.Handler().ServeHTTP(w, r)
	var body struct{ Code, Message string }
	if w.Code != 416 || w.Header().Get("Content-Type") != "application/json" || json.Unmarshal(w.Body.Bytes(), &body) != nil ||
		body.Code != "out_of_range" || w.Header().Get("Content-Range") != fmt.Sprintf("bytes */%d", len(playlist)) {
		t.Fatalf("%d %q %q: %s", w.Code, w.Header().Get("Content-Type"), w.Header().Get("Content-Range"), w.Body)
	}
}
