package gateway_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/realpart"
	"github.com/spoolvideo/spool/services/gateway/gateway"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestTenantIsolation: a tenant's key sees none of another tenant's
// things: each route naming B's job, upload or batch answers A exactly as
// for one that does not exist (404, the same body); A's listings and
// audit log hold none of B's; A's spec cannot use B's upload, nor name B;
// an admin key sees everything and acts for the tenant it names; B's
// submissions, cancels and deletions are in B's audit log.
func TestTenantIsolation(t *testing.T) {
	media, err := testMedia()
	if err != nil {
		realpart.Missing(t, "%v", err)
	}
	c := devstacktest.Connect(t, 0)
	pool := fmt.Sprintf("tn-%d", time.Now().UnixNano()%1e9)
	urlKey := devstacktest.URLKey()
	srv := apiOver(t, pool+":ref,sim", worker.Config{ID: pool, Pool: pool, Models: []string{"ref", "sim"}, Slots: 2, Heartbeat: time.Second},
		func(cfg *gateway.Config) { cfg.URLKey = config.Secret(urlKey) })
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	ta, tb := "ta-"+run, "tb-"+run
	ka, kb, admin := devstacktest.Key(t, c.Store, ta, false), devstacktest.Key(t, c.Store, tb, false), keyOf(t, srv)

	// B's job, cancelled job, upload and batch.
	jb, jc, bb := "tnb-"+run, "tnc-"+run, "tnbb-"+run
	if code, raw := as(t, srv, kb, "POST", "/generate", small(`,"id":"`+jb+`"`)); code != 202 {
		t.Fatalf("B's job: %d %s", code, raw)
	}
	if code, raw := as(t, srv, kb, "POST", "/generate", `{"id":"`+jc+`","prompt":"x","durationFrames":2400,"windowFrames":13,"overlapFrames":4,`+
		`"width":96,"height":64,"steps":2,"fps":24}`); code != 202 {
		t.Fatalf("B's long job: %d %s", code, raw)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/uploads", bytes.NewReader(media["image.png"]))
	req.Header.Set("Authorization", "Bearer "+kb)
	req.Header.Set("Content-Type", "image/png")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	ub, _ := up["id"].(string)
	if resp.StatusCode != 201 && resp.StatusCode != 200 || up["tenant"] != tb {
		t.Fatalf("B's upload: %d %v", resp.StatusCode, up)
	}
	if code, raw := as(t, srv, kb, "POST", "/batches?id="+bb, "["+small("")+"]"); code != 201 {
		t.Fatalf("B's batch: %d %s", code, raw)
	}
	if code, raw := as(t, srv, kb, "POST", "/jobs/"+jc+"/cancel", ""); code != 202 && code != 404 {
		t.Fatalf("B's cancel: %d %s", code, raw)
	}
	st := waitState(t, srv, jb, "succeeded")

	// Every route naming B's things answers A as for missing ones.
	const noJob, noBatch, noUpload = "tn-missing-job", "tn-missing-batch", "up-tnmissing"
	for _, r := range []struct{ method, path, mine, missing string }{
		{"GET", "/status/%s", jb, noJob}, {"GET", "/download/%s", jb, noJob}, {"GET", "/jobs/%s/events", jb, noJob},
		{"POST", "/jobs/%s/cancel", jc, noJob}, {"GET", "/jobs/%s/lineage", jb, noJob}, {"GET", "/jobs/%s/hls/index.m3u8", jb, noJob},
		{"GET", "/jobs/%s/hls/init.mp4", jb, noJob}, {"GET", "/jobs/%s/hls/0.m4s", jb, noJob}, {"GET", "/jobs/%s/waveform", jb, noJob},
		{"DELETE", "/jobs/%s", jb, noJob}, {"GET", "/batches/%s", bb, noBatch}, {"GET", "/uploads/%s", ub, noUpload},
		{"POST", "/uploads/%s/complete", ub, noUpload},
	} {
		code, body := as(t, srv, ka, r.method, fmt.Sprintf(r.path, r.mine), "")
		mcode, mbody := as(t, srv, ka, r.method, fmt.Sprintf(r.path, r.missing), "")
		if code != 404 || mcode != 404 || strings.ReplaceAll(body, r.mine, r.missing) != mbody || !strings.Contains(body, `"code":"not_found"`) {
			t.Errorf("%s %s as A: %d %s; for a missing one: %d %s", r.method, fmt.Sprintf(r.path, r.mine), code, body, mcode, mbody)
		}
		if r.method != "GET" {
			continue
		}
		if code, body := as(t, srv, kb, r.method, fmt.Sprintf(r.path, r.mine), ""); code == 404 && strings.Contains(body, "store: ") {
			t.Errorf("%s %s as B, its owner: %d %s", r.method, fmt.Sprintf(r.path, r.mine), code, body)
		}
	}
	// Listings: A's hold none of B's; an admin's every tenant's.
	listed := func(key, query, id string) bool {
		code, raw := as(t, srv, key, "GET", "/jobs?limit=1000"+query, "")
		if code != 200 {
			t.Fatalf("GET /jobs%s: %d %s", query, code, raw)
		}
		return strings.Contains(raw, `"id":"`+id+`"`)
	}
	if listed(ka, "", jb) || !listed(kb, "", jb) || !listed(admin, "&tenant="+tb, jb) || listed(admin, "&tenant="+ta, jb) {
		t.Error("GET /jobs: B's job is listed to A, or not to B or an admin")
	}
	if code, raw := as(t, srv, ka, "GET", "/jobs?limit=1000", ""); code != 200 || strings.Contains(raw, `"tenant":"`+tb+`"`) {
		t.Errorf("A's list holds another tenant's job: %s", raw)
	}
	// A names B, or B's upload: refused.
	for _, r := range []struct{ method, path, body, field string }{
		{"GET", "/jobs?tenant=" + tb, "", "tenant"},
		{"GET", "/audit?tenant=" + tb, "", "tenant"},
		{"GET", "/status/" + jb + "?tenant=" + tb, "", "tenant"},
		{"POST", "/generate", small(`,"tenant":"` + tb + `"`), "tenant"},
		{"POST", "/generate?tenant=" + tb, small(""), "tenant"},
		{"POST", "/batches?tenant=" + tb, "[" + small("") + "]", "tenant"},
		{"POST", "/uploads?tenant=" + tb, "{}", "tenant"},
	} {
		code, v := asJSON(t, srv, ka, r.method, r.path, r.body)
		if code != 400 || v["code"] != "invalid_argument" || v["field"] != r.field || !strings.Contains(fmt.Sprint(v["message"]), `"`+ta+`"`) {
			t.Errorf("%s %s as A: %d %v", r.method, r.path, code, v)
		}
	}
	code, v := asJSON(t, srv, ka, "POST", "/batches", "["+small(`,"tenant":"`+tb+`"`)+"]")
	if item := firstItem(v); code != 207 || item["field"] != "tenant" {
		t.Errorf("A's batch of a spec naming B: %d %v", code, v)
	}
	image := func(id string) string { return small(`,"image":"` + id + `"`) }
	code, v = asJSON(t, srv, ka, "POST", "/generate", image(ub))
	mcode, mv := asJSON(t, srv, ka, "POST", "/generate", image(noUpload))
	if code != 400 || v["field"] != "image" || mcode != 400 || strings.ReplaceAll(fmt.Sprint(v), ub, noUpload) != fmt.Sprint(mv) {
		t.Errorf("A's spec with B's upload: %d %v; with none: %d %v", code, v, mcode, mv)
	}
	// An admin sees B's, and acts for the tenant it names.
	if code, v := asJSON(t, srv, admin, "GET", "/status/"+jb, ""); code != 200 || v["tenant"] != tb {
		t.Errorf("B's job to an admin: %d %v", code, v)
	}
	if code, v := asJSON(t, srv, admin, "GET", "/uploads/"+ub, ""); code != 200 || v["tenant"] != tb {
		t.Errorf("B's upload to an admin: %d %v", code, v)
	}
	ja := "tna-" + run
	if code, raw := as(t, srv, admin, "POST", "/generate", small(`,"id":"`+ja+`","tenant":"`+ta+`"`)); code != 202 {
		t.Errorf("an admin's job for A: %d %s", code, raw)
	} else if code, v := asJSON(t, srv, ka, "GET", "/status/"+ja, ""); code != 200 || v["tenant"] != ta {
		t.Errorf("the admin's job for A, to A: %d %v", code, v)
	}

	signedURLs(t, srv, urlKey, st, jb, jc)

	// B deletes its job; its audit log has its submissions, its cancel
	// and the deletion, by its key; A's has none of them.
	if code, raw := as(t, srv, kb, "DELETE", "/jobs/"+jb, ""); code != 200 {
		t.Fatalf("B deletes its job: %d %s", code, raw)
	}
	code, v = asJSON(t, srv, kb, "GET", "/audit", "")
	got := map[string]bool{}
	entries, _ := v["entries"].([]any)
	for _, e := range entries {
		e := e.(map[string]any)
		if e["tenant"] != tb {
			t.Errorf("B's audit log holds %v", e)
		}
		got[fmt.Sprint(e["action"], " ", e["target"])] = true
	}
	for _, want := range []string{"job.submit " + jb, "job.submit " + jc, "batch.submit " + bb, "job.cancel " + jc, "job.delete " + jb} {
		if !got[want] {
			t.Errorf("B's audit log lacks %s: %d %v", want, code, v)
		}
	}
	if _, raw := as(t, srv, ka, "GET", "/audit", ""); strings.Contains(raw, tb) || !strings.Contains(raw, "job.submit") {
		t.Errorf("A's audit log: %s", raw)
	}
	if _, raw := as(t, srv, admin, "GET", "/audit?tenant="+tb+"&action=job.delete", ""); !strings.Contains(raw, `"target":"`+jb+`"`) {
		t.Errorf("an admin's audit log of B's deletions: %s", raw)
	}
}

// signedURLs checks the signed URLs of job, which has succeeded (st is its
// status): its preview and video open without a key, and the playlist's
// files with the signature it hands on; an expired, tampered or other
// job's signature is refused (403), and a signature opens no other route.
func signedURLs(t *testing.T, srv *httptest.Server, key string, st map[string]any, job, other string) {
	t.Helper()
	preview, _ := st["preview_url"].(string)
	download, _ := st["download_url"].(string)
	if !strings.HasPrefix(preview, "/jobs/"+job+"/hls/index.m3u8?exp=") || !strings.HasPrefix(download, "/download/"+job+"?exp=") {
		t.Fatalf("the status's URLs: %q %q", preview, download)
	}
	// The signature is the documented HMAC: recompute it.
	sign := func(job string, exp int64) string {
		m := hmac.New(sha256.New, []byte(key))
		fmt.Fprintf(m, "spool-url-v1\n%s\n%d", job, exp)
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	u, _ := url.Parse(preview)
	exp, _ := strconv.ParseInt(u.Query().Get("exp"), 10, 64)
	if u.Query().Get("sig") != sign(job, exp) || time.Until(time.Unix(exp, 0)) < 59*time.Minute {
		t.Fatalf("the preview's signature %q (exp %d) is not the documented one", u.Query().Get("sig"), exp)
	}
	code, playlist := as(t, srv, "", "GET", preview, "")
	if code != 200 || !strings.Contains(playlist, `URI="init.mp4?exp=`) {
		t.Fatalf("the signed playlist: %d %s", code, playlist)
	}
	files := 0
	for _, line := range strings.Split(playlist, "\n") {
		uri := line
		if _, after, ok := strings.Cut(line, `URI="`); ok {
			uri, _, _ = strings.Cut(after, `"`)
		} else if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if !strings.Contains(uri, "sig=") {
			t.Errorf("an unsigned URI in the playlist: %q", line)
		}
		if code, body := as(t, srv, "", "GET", "/jobs/"+job+"/hls/"+uri, ""); code != 200 {
			t.Errorf("the playlist's %s without a key: %d %s", uri, code, body)
		}
		files++
	}
	if files < 2 {
		t.Errorf("the playlist names %d files", files)
	}
	if code, body := as(t, srv, "", "GET", download, ""); code != 302 {
		t.Errorf("the signed download: %d %s", code, body)
	}
	q := func(exp int64, sig string) string { return "?exp=" + strconv.FormatInt(exp, 10) + "&sig=" + sig }
	past := time.Now().Add(-time.Minute).Unix()
	sig := u.Query().Get("sig")
	tampered := sig[:len(sig)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(sig, "AA")]
	for name, r := range map[string]struct {
		path string
		code int
	}{
		"expired":            {"/download/" + job + q(past, sign(job, past)), 403},
		"expired preview":    {"/jobs/" + job + "/hls/index.m3u8" + q(past, sign(job, past)), 403},
		"tampered":           {"/download/" + job + q(exp, tampered), 403},
		"a later exp":        {"/download/" + job + q(exp+3600, sig), 403},
		"another job's":      {"/download/" + job + q(exp, sign(other, exp)), 403},
		"another job's init": {"/jobs/" + job + "/hls/init.mp4" + q(exp, sign(other, exp)), 403},
		"a malformed exp":    {"/download/" + job + "?exp=soon&sig=x", 400},
		"a malformed sig":    {"/download/" + job + q(exp, "x"), 403},
		"on the status":      {"/status/" + job + q(exp, sig), 401},
		"on the lineage":     {"/jobs/" + job + "/lineage" + q(exp, sig), 401},
		"on the events":      {"/jobs/" + job + "/events" + q(exp, sig), 401},
		"to delete":          {"/jobs/" + job + q(exp, sig), 401},
	} {
		method := "GET"
		if name == "to delete" {
			method = "DELETE"
		}
		if code, body := as(t, srv, "", method, r.path, ""); code != r.code || !strings.Contains(body, `"message"`) {
			t.Errorf("%s (%s %s): %d %s; want %d", name, method, r.path, code, body, r.code)
		}
	}
	if _, body := as(t, srv, "", "GET", "/download/"+job+q(past, sign(job, past)), ""); !strings.Contains(body, "expired") {
		t.Errorf("an expired URL's message: %s", body)
	}
}

func firstItem(v map[string]any) map[string]any {
	jobs, _ := v["jobs"].([]any)
	if len(jobs) == 0 {
		return nil
	}
	item, _ := jobs[0].(map[string]any)
	e, _ := item["error"].(map[string]any)
	return e
}
