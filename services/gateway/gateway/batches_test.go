package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// post sends body with contentType ("" for none) and decodes the answer.
func post(t *testing.T, srv *httptest.Server, path, contentType, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp, v
}

// small is a spec of a quick job, with extra fields.
func small(extra string) string {
	return `{"prompt":"a lighthouse","durationFrames":22,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":2,"fps":24` +
		extra + `}`
}

// TestBatch: a batch of specs, one of them bad, submits the good ones and
// refuses the bad one at its index; its progress ends finished, with every
// frame made; the same batch sent again (a retry) names the same jobs and
// submits nothing; JSON Lines work as an array does; a batch id reused
// with other specs is refused.
func TestBatch(t *testing.T) {
	srv := api(t)
	run := fmt.Sprint(time.Now().UnixNano() % 1e9) // the database outlives one run of the test
	batch := "bt-" + run
	own := "bt-own-" + run
	bad := `{"prompt":"x","durationFrames":20,"fps":500}`
	body := "[" + small("") + ",\n" + bad + "," + small(`,"id":"`+own+`"`) + "]"
	r, v := post(t, srv, "/batches?id="+batch, "application/json", body)
	if r.StatusCode != http.StatusMultiStatus || v["batch_id"] != batch || r.Header.Get("Location") != "/batches/"+batch {
		t.Fatalf("post: %d %v (Location %q)", r.StatusCode, v, r.Header.Get("Location"))
	}
	items := v["jobs"].([]any)
	first, refused, third := items[0].(map[string]any), items[1].(map[string]any), items[2].(map[string]any)
	if first["id"] != batch+"-0" || third["id"] != own || refused["id"] != nil {
		t.Fatalf("job ids: %v", items)
	}
	if e := refused["error"].(map[string]any); refused["index"] != 1.0 || e["code"] != "invalid_argument" || e["field"] != "fps" ||
		!strings.Contains(e["message"].(string), "allowed") {
		t.Fatalf("the bad spec: %v", refused)
	}

	var b map[string]any
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var r *http.Response
		r, b = call(t, srv, "GET", "/batches/"+batch, "", true)
		if r.StatusCode != 200 {
			t.Fatalf("get: %d %v", r.StatusCode, b)
		}
		if b["finished"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch never finished: %v", b)
		}
	}
	states := b["states"].(map[string]any)
	if b["specs"] != 3.0 || b["accepted"] != 2.0 || b["refused"] != 1.0 || states["succeeded"] != 2.0 || states["submitted"] != 0.0 ||
		b["progress"] != 1.0 || b["frames_total"] != 44.0 || b["frames_done"] != 44.0 {
		t.Fatalf("progress: %v", b)
	}
	jobs := b["jobs"].([]any)
	if j := jobs[0].(map[string]any); j["id"] != batch+"-0" || j["state"] != "succeeded" {
		t.Fatalf("job 0: %v", j)
	}

	// A retry: the same jobs, nothing submitted again.
	r, v = post(t, srv, "/batches?id="+batch, "", body)
	if again := v["jobs"].([]any); r.StatusCode != http.StatusMultiStatus || again[0].(map[string]any)["id"] != batch+"-0" ||
		again[2].(map[string]any)["id"] != own {
		t.Fatalf("retry: %d %v", r.StatusCode, v)
	}
	if _, s := call(t, srv, "GET", "/status/"+batch+"-0", "", true); s["state"] != "succeeded" {
		t.Fatalf("the retry ran the job again: %v", s)
	}
	if r, v := post(t, srv, "/batches?id="+batch, "application/json", "["+small("")+"]"); r.StatusCode != 409 || v["code"] != "already_exists" {
		t.Fatalf("the id with other specs: %d %v", r.StatusCode, v)
	}
	// The same count of specs, one of them changed: not a retry either.
	other := "[" + strings.Replace(small(""), `"prompt":"`, `"prompt":"another `, 1) + ",\n" + bad + "," + small(`,"id":"`+own+`"`) + "]"
	if r, v := post(t, srv, "/batches?id="+batch, "application/json", other); r.StatusCode != 409 || v["code"] != "already_exists" ||
		!strings.Contains(v["message"].(string), "spec 0 differs") {
		t.Fatalf("the batch again with spec 0 changed: %d %v", r.StatusCode, v)
	}

	// JSON Lines, and a spec of another tenant.
	lines := small("") + "\n\n" + small(`,"tenant":"beta"`) + "\n"
	r, v = post(t, srv, "/batches?tenant=acme&id=bl-"+run, "application/x-ndjson", lines)
	items = v["jobs"].([]any)
	if r.StatusCode != http.StatusMultiStatus || len(items) != 2 || items[0].(map[string]any)["id"] != "bl-"+run+"-0" ||
		items[1].(map[string]any)["error"].(map[string]any)["field"] != "tenant" {
		t.Fatalf("JSON Lines: %d %v", r.StatusCode, v)
	}
	r, v = post(t, srv, "/batches", "application/x-ndjson", small(""))
	if r.StatusCode != http.StatusCreated || !strings.HasPrefix(v["batch_id"].(string), "b") {
		t.Fatalf("one spec, no batch id: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/batches/no-such-batch", "", true); r.StatusCode != 404 || v["code"] != "not_found" {
		t.Fatalf("no batch: %d %v", r.StatusCode, v)
	}
}

// TestBatchRefusals: what makes a whole batch unusable is refused before
// anything is submitted, with a status and a message that say why. The
// gateway needs no NATS or MinIO for these, and Postgres for its keys only.
func TestBatchRefusals(t *testing.T) {
	c := devstacktest.Connect(t, 0)
	g, err := gateway.New(testConfig(gateway.Config{Pools: "default:ref,sim", MaxBody: 1024, BatchMax: 2, BatchMaxBody: 4096}), nil, c.Store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, g, c.Store)
	spec := small("")
	for _, c := range []struct {
		name, query, ctype, body string
		status                   int
		want                     string
	}{
		{"too many", "", "application/json", "[" + spec + "," + spec + "," + spec + "]", 413, "SPOOL_GATEWAY_BATCH_MAX"},
		{"too large", "", "", "[" + strings.Repeat(spec+",", 40) + spec + "]", 413, "SPOOL_GATEWAY_BATCH_MAX_BODY"},
		{"empty", "", "application/x-ndjson", "\n \n", 400, "no job spec"},
		{"an object, not an array", "", "application/json", spec, 400, "JSON array"},
		{"a line that is no object", "", "", spec + "\n[1]\n", 400, "line 2"},
		{"another type", "", "text/csv", "a,b", 415, "application/x-ndjson"},
		{"a bad batch id", "?id=Bad_ID", "", spec, 400, "batch id"},
		{"a batch id too long", "?id=" + strings.Repeat("b", 59), "", spec, 400, "at most 58"},
		{"a bad tenant", "?tenant=A", "", spec, 400, "tenant"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, v := post(t, srv, "/batches"+c.query, c.ctype, c.body)
			if r.StatusCode != c.status || !strings.Contains(fmt.Sprint(v["message"]), c.want) {
				t.Fatalf("%d %v; want %d with %q", r.StatusCode, v, c.status, c.want)
			}
		})
	}
}
