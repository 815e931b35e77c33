package gateway_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
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
	g, err := gateway.New(gateway.Config{Dev: true, Pools: "default:ref,sim,ref-talk", MaxBody: 4096}, c.Bus, c.Store, c.Blob, quiet())
	if err != nil {
		t.Fatal(err)
	}
	h := g.Handler()
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
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var body struct{ Code, Message string }
			if w.Code < 400 || w.Code >= 500 || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Code == "" || body.Message == "" {
				t.Errorf("%s %q: %d %s", method, target, w.Code, w.Body)
			}
		}
	}
}
