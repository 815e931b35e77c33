package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/realpart"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// uploadsAPI is the gateway alone over the real stack, in dev mode, with
// the upload limits of u.
func uploadsAPI(t *testing.T, u gateway.UploadConfig) (*httptest.Server, devstacktest.Clients) {
	t.Helper()
	c := devstacktest.Connect(t, 0)
	return newGateway(t, gateway.Config{Pools: "default:ref,sim", MaxBody: 4096, Uploads: u}, c), c
}

var tenantSeq atomic.Int64

// freshTenant names a tenant of this test alone (the stack's database and
// bucket outlive one run).
func freshTenant() string {
	return fmt.Sprintf("t%d-%d", time.Now().UnixNano(), tenantSeq.Add(1))
}

// testMedia makes the files the tests upload, once per test binary.
var testMedia = sync.OnceValues(func() (map[string][]byte, error) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return nil, fmt.Errorf("ffmpeg is not installed; run \"make deps\"")
	}
	dir, err := os.MkdirTemp("", "spool-uploads")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := map[string][]byte{}
	for name, args := range map[string][]string{
		"video.mp4": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=24", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", "2", "-ac", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-movflags", "+faststart"},
		"image.png": {"-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1"},
		"audio.wav": {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "1.5", "-ac", "2"},
	} {
		p := filepath.Join(dir, name)
		args = append(append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...), p)
		if msg, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ffmpeg %v: %w\n%s", args, err, msg)
		}
		if out[name], err = os.ReadFile(p); err != nil {
			return nil, err
		}
	}
	v := out["video.mp4"]
	out["truncated.mp4"] = v[:len(v)*2/3]
	return out, nil
})

func mediaFiles(t *testing.T) map[string][]byte {
	t.Helper()
	m, err := testMedia()
	if err != nil {
		realpart.Missing(t, "%v", err)
	}
	return m
}

// padded is video followed by a top-level 'free' box of pad bytes: a
// valid MP4 of any size, whose padding no demuxer reads.
func padded(video []byte, pad int64) io.Reader {
	head := binary.BigEndian.AppendUint32(nil, uint32(pad+8))
	return io.MultiReader(bytes.NewReader(video), bytes.NewReader(append(head, "free"...)), io.LimitReader(zeros{}, pad))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// send makes a request with body (size bytes, -1 to stream it chunked)
// and decodes the JSON answer.
func send(t *testing.T, method, url, ctype string, body io.Reader, size int64) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.ContentLength = size
	if body == nil {
		req.ContentLength = 0
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp, v
}

func upload(t *testing.T, srv *httptest.Server, tenant, ctype string, data []byte) (*http.Response, map[string]any) {
	t.Helper()
	return send(t, "POST", srv.URL+"/uploads?tenant="+tenant, ctype, bytes.NewReader(data), int64(len(data)))
}

// nothingStored fails unless the tenant has no object and no upload row.
func nothingStored(t *testing.T, c devstacktest.Clients, tenant string) {
	t.Helper()
	ctx := context.Background()
	if objs, err := c.Blob.List(ctx, blob.Key("uploads/"+tenant+"/")); err != nil || len(objs) != 0 {
		t.Fatalf("objects left: %+v %v", objs, err)
	}
	if rows, _, err := c.Store.ListUploads(ctx, store.ListUploadsParams{Tenant: tenant}); err != nil || len(rows) != 0 {
		t.Fatalf("rows left: %+v %v", rows, err)
	}
}

// fields picks keys of v, for comparing.
func fields(v map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		out[k] = v[k]
	}
	return out
}

func same(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

var probeKeys = []string{"state", "kind", "codec", "width", "height", "fps", "frames", "duration_s", "audio_codec", "sample_rate", "channels", "bytes"}

// TestUploadMedia: an image, a video and an audio file are streamed,
// probed and recorded, each field exact; the same bytes again are the
// same upload, stored once; another tenant sees none of them.
func TestUploadMedia(t *testing.T) {
	srv, c := uploadsAPI(t, gateway.UploadConfig{})
	files := mediaFiles(t)
	tenant := freshTenant()
	cases := []struct {
		file, ctype string
		want        map[string]any
	}{
		{"video.mp4", "video/mp4", map[string]any{"state": "ready", "kind": "video", "codec": "h264", "width": 320, "height": 240, "fps": 24,
			"frames": 48, "duration_s": 2, "audio_codec": "aac", "sample_rate": 48000, "channels": 2}},
		{"image.png", "image/png", map[string]any{"state": "ready", "kind": "image", "codec": "png", "width": 64, "height": 48, "fps": 0,
			"frames": 0, "duration_s": 0, "audio_codec": nil, "sample_rate": 0, "channels": 0}},
		{"audio.wav", "application/octet-stream", map[string]any{"state": "ready", "kind": "audio", "codec": "pcm_s16le", "width": 0,
			"height": 0, "fps": 0, "frames": 0, "duration_s": 1.5, "audio_codec": nil, "sample_rate": 48000, "channels": 2}},
	}
	ids := map[string]string{}
	other := devstacktest.Key(t, c.Store, tenant+"-other", false)
	for _, tc := range cases {
		r, v := upload(t, srv, tenant, tc.ctype, files[tc.file])
		if r.StatusCode != 201 || r.Header.Get("Location") != "/uploads/"+fmt.Sprint(v["id"]) {
			t.Fatalf("%s: %d %v", tc.file, r.StatusCode, v)
		}
		tc.want["bytes"] = len(files[tc.file])
		same(t, tc.file, fields(v, probeKeys...), tc.want)
		if v["tenant"] != tenant || len(fmt.Sprint(v["sha256"])) != 64 || v["content_type"] != tc.ctype {
			t.Fatalf("%s: %v", tc.file, v)
		}
		id := v["id"].(string)
		ids[tc.file] = id
		r, got := send(t, "GET", srv.URL+"/uploads/"+id+"?tenant="+tenant, "", nil, 0)
		if r.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", id, r.StatusCode, got)
		}
		same(t, "GET "+tc.file, got, v)
		if code, body := as(t, srv, other, "GET", "/uploads/"+id, ""); code != 404 {
			t.Fatalf("another tenant's upload: %d %s", code, body)
		}
		key, _ := blob.UploadSource(tenant, id)
		if info, err := c.Blob.Stat(context.Background(), key); err != nil || info.Size != int64(len(files[tc.file])) {
			t.Fatalf("%s stored as %+v %v", tc.file, info, err)
		}
	}
	// The same bytes: the first upload, 200, nothing more stored.
	r, v := upload(t, srv, tenant, "video/mp4", files["video.mp4"])
	if r.StatusCode != 200 || v["id"] != ids["video.mp4"] {
		t.Fatalf("the same video again: %d %v", r.StatusCode, v)
	}
	objs, _ := c.Blob.List(context.Background(), blob.Key("uploads/"+tenant+"/"))
	rows, _, _ := c.Store.ListUploads(context.Background(), store.ListUploadsParams{Tenant: tenant})
	if len(objs) != 3 || len(rows) != 3 {
		t.Fatalf("%d objects and %d rows for 3 uploads: %+v", len(objs), len(rows), objs)
	}
	// Another tenant's same bytes are its own.
	if r, v := upload(t, srv, tenant+"-b", "video/mp4", files["video.mp4"]); r.StatusCode != 201 || v["id"] == ids["video.mp4"] {
		t.Fatalf("another tenant's same video: %d %v", r.StatusCode, v)
	}
	for path, code := range map[string]int{"/uploads/x-1": 400, "/uploads/up-nosuchupload": 404, "/uploads/up-a?tenant=Bad/T": 400} {
		if r, v := send(t, "GET", srv.URL+path, "", nil, 0); r.StatusCode != code || v["code"] == nil {
			t.Fatalf("GET %s: %d %v, want %d", path, r.StatusCode, v, code)
		}
	}
}

// TestUploadRefusals: each bad upload is refused with a reason and a
// message naming the problem, and leaves no object and no row.
func TestUploadRefusals(t *testing.T) {
	srv, c := uploadsAPI(t, gateway.UploadConfig{MaxBytes: 3 << 20})
	files := mediaFiles(t)
	cases := []struct {
		name   string
		ctype  string
		body   func() io.Reader
		size   int64
		status int
		reason string
		msg    string
	}{
		{"text labelled video", "video/mp4", func() io.Reader { return strings.NewReader("eggs, milk, bread\n") }, 18, 400, "not_media", "not media"},
		{"empty", "video/mp4", func() io.Reader { return strings.NewReader("") }, 0, 400, "empty", "empty"},
		{"truncated mp4", "video/mp4", func() io.Reader { return bytes.NewReader(files["truncated.mp4"]) }, -1, 400, "truncated", "header says 48 frames"},
		{"content type", "text/plain", func() io.Reader { return bytes.NewReader(files["image.png"]) }, -1, 415, "content_type", "want image/*"},
		{"no content type", "", func() io.Reader { return bytes.NewReader(files["image.png"]) }, -1, 415, "content_type", "want image/*"},
		{"over the limit, streamed", "video/mp4", func() io.Reader { return padded(files["video.mp4"], 4<<20) }, -1, 413, "too_large",
			"want at most 3145728"},
		{"over the limit, announced", "video/mp4", func() io.Reader { return padded(files["video.mp4"], 4<<20) }, int64(len(files["video.mp4"])) + 8 + 4<<20,
			413, "too_large", "want at most 3145728"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenant := freshTenant()
			r, v := send(t, "POST", srv.URL+"/uploads?tenant="+tenant, tc.ctype, tc.body(), tc.size)
			msg, _ := v["message"].(string)
			if r.StatusCode != tc.status || v["code"] != "invalid_argument" || v["reason"] != tc.reason || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%d %v, want %d %s with %q", r.StatusCode, v, tc.status, tc.reason, tc.msg)
			}
			nothingStored(t, c, tenant)
		})
	}
	if r, v := upload(t, srv, "Bad/Tenant", "image/png", files["image.png"]); r.StatusCode != 400 || v["field"] != "tenant" {
		t.Fatalf("bad tenant: %d %v", r.StatusCode, v)
	}
}

// TestUploadPresigned: announce, PUT to the presigned URL, complete; the
// refusals of the flow; the same bytes completed again are the first
// upload.
func TestUploadPresigned(t *testing.T) {
	srv, c := uploadsAPI(t, gateway.UploadConfig{MaxBytes: 3 << 20})
	files := mediaFiles(t)
	ctx := context.Background()
	video := files["video.mp4"]
	announce := func(tenant string, n int, ctype string) (*http.Response, map[string]any) {
		return send(t, "POST", srv.URL+"/uploads?tenant="+tenant, "application/json",
			strings.NewReader(fmt.Sprintf(`{"bytes":%d,"content_type":%q}`, n, ctype)), -1)
	}
	put := func(url string, data []byte) {
		t.Helper()
		if r, _ := send(t, "PUT", url, "", bytes.NewReader(data), int64(len(data))); r.StatusCode != 200 {
			t.Fatalf("PUT: %d", r.StatusCode)
		}
	}
	complete := func(tenant, id string) (*http.Response, map[string]any) {
		return send(t, "POST", srv.URL+"/uploads/"+id+"/complete?tenant="+tenant, "", nil, 0)
	}

	tenant := freshTenant()
	r, a := announce(tenant, len(video), "video/mp4")
	if r.StatusCode != 201 || a["method"] != "PUT" || !strings.HasPrefix(fmt.Sprint(a["upload_url"]), "http") || a["expires_at"] == nil {
		t.Fatalf("announce: %d %v", r.StatusCode, a)
	}
	id := a["id"].(string)
	if a["complete_url"] != "/uploads/"+id+"/complete" {
		t.Fatalf("complete_url %v", a["complete_url"])
	}
	if r, v := send(t, "GET", srv.URL+"/uploads/"+id+"?tenant="+tenant, "", nil, 0); r.StatusCode != 200 || v["state"] != "pending" ||
		v["max_bytes"] != float64(len(video)) {
		t.Fatalf("pending: %d %v", r.StatusCode, v)
	}
	if r, v := complete(tenant, id); r.StatusCode != 409 || v["code"] != "failed_precondition" {
		t.Fatalf("complete before the PUT: %d %v", r.StatusCode, v)
	}
	if r, _ := complete("other", id); r.StatusCode != 404 {
		t.Fatalf("complete as another tenant: %d", r.StatusCode)
	}
	put(a["upload_url"].(string), video)
	r, v := complete(tenant, id)
	if r.StatusCode != 201 || v["id"] != id {
		t.Fatalf("complete: %d %v", r.StatusCode, v)
	}
	same(t, "completed", fields(v, probeKeys...), map[string]any{"state": "ready", "kind": "video", "codec": "h264", "width": 320, "height": 240,
		"fps": 24, "frames": 48, "duration_s": 2, "audio_codec": "aac", "sample_rate": 48000, "channels": 2, "bytes": len(video)})
	objs, _ := c.Blob.List(ctx, blob.Key("uploads/"+tenant+"/"))
	if len(objs) != 1 || objs[0].Key != blob.Key("uploads/"+tenant+"/"+id+"/source") {
		t.Fatalf("objects %+v, want the source alone", objs)
	}
	if r, again := complete(tenant, id); r.StatusCode != 200 || again["id"] != id {
		t.Fatalf("complete again: %d %v", r.StatusCode, again)
	}
	// A PUT after the completion changes nothing of the upload.
	put(a["upload_url"].(string), []byte("something else entirely"))
	if r, again := complete(tenant, id); r.StatusCode != 200 || again["sha256"] != v["sha256"] {
		t.Fatalf("complete after another PUT: %d %v", r.StatusCode, again)
	}
	src, _ := blob.UploadSource(tenant, id)
	if info, err := c.Blob.Stat(ctx, src); err != nil || info.Size != int64(len(video)) {
		t.Fatalf("the source after another PUT: %+v %v", info, err)
	}
	// A completion that failed after copying the bytes in completes again.
	other := freshTenant()
	r, o := announce(other, len(video), "video/mp4")
	if r.StatusCode != 201 {
		t.Fatalf("announce: %d %v", r.StatusCode, o)
	}
	put(o["upload_url"].(string), video)
	oid := o["id"].(string)
	oin, _ := blob.UploadIncoming(other, oid)
	osrc, _ := blob.UploadSource(other, oid)
	st, _ := c.Blob.Stat(ctx, oin)
	if _, err := c.Blob.Copy(ctx, oin, osrc, st.ETag); err != nil {
		t.Fatal(err)
	}
	_ = c.Blob.Delete(ctx, oin)
	if r, v := complete(other, oid); r.StatusCode != 201 || v["frames"] != float64(48) {
		t.Fatalf("complete after a copy: %d %v", r.StatusCode, v)
	}
	// The same bytes through a second presigned upload: the first one.
	r, b := announce(tenant, len(video), "video/mp4")
	if r.StatusCode != 201 {
		t.Fatalf("announce: %d %v", r.StatusCode, b)
	}
	put(b["upload_url"].(string), video)
	if r, v := complete(tenant, b["id"].(string)); r.StatusCode != 200 || v["id"] != id {
		t.Fatalf("the same bytes completed: %d %v, want %s", r.StatusCode, v, id)
	}
	// A completion retried (the answer was lost) answers the same, and the
	// duplicate stays pending, for retention to delete whatever its URL
	// lets in until it lapses.
	if r, v := complete(tenant, b["id"].(string)); r.StatusCode != 200 || v["id"] != id {
		t.Fatalf("the same bytes completed again: %d %v, want %s", r.StatusCode, v, id)
	}
	if r, v := send(t, "GET", srv.URL+"/uploads/"+b["id"].(string)+"?tenant="+tenant, "", nil, 0); r.StatusCode != 200 || v["state"] != "pending" {
		t.Fatalf("the duplicate upload: %d %v", r.StatusCode, v)
	}
	if objs, _ := c.Blob.List(ctx, blob.Key("uploads/"+tenant+"/")); len(objs) != 1 {
		t.Fatalf("objects after the duplicate: %+v", objs)
	}

	// Refusals leave nothing.
	refusals := []struct {
		name     string
		announce int
		ctype    string
		put      []byte
		status   int
		reason   string
	}{
		{"more than announced", 1000, "video/mp4", video, 413, "too_large"},
		{"not media", 20, "video/mp4", []byte("eggs, milk, bread..."), 400, "not_media"},
		{"truncated", len(files["truncated.mp4"]), "video/mp4", files["truncated.mp4"], 400, "truncated"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			tenant := freshTenant()
			r, a := announce(tenant, tc.announce, tc.ctype)
			if r.StatusCode != 201 {
				t.Fatalf("announce: %d %v", r.StatusCode, a)
			}
			put(a["upload_url"].(string), tc.put)
			if r, v := complete(tenant, a["id"].(string)); r.StatusCode != tc.status || v["reason"] != tc.reason {
				t.Fatalf("complete: %d %v, want %d %s", r.StatusCode, v, tc.status, tc.reason)
			}
			// No object; the row stays pending until the URL lapses, when
			// retention deletes what a PUT again may have brought.
			if objs, err := c.Blob.List(ctx, blob.Key("uploads/"+tenant+"/")); err != nil || len(objs) != 0 {
				t.Fatalf("objects left: %+v %v", objs, err)
			}
			rows, _, err := c.Store.ListUploads(ctx, store.ListUploadsParams{Tenant: tenant})
			if err != nil || len(rows) != 1 || rows[0].State != store.UploadPending || rows[0].ExpiresAt == nil {
				t.Fatalf("rows left: %+v %v", rows, err)
			}
		})
	}
	for body, field := range map[string]string{`{"bytes":0}`: "bytes", `{"bytes":10,"content_type":"text/plain"}`: "content_type"} {
		if r, v := send(t, "POST", srv.URL+"/uploads", "application/json", strings.NewReader(body), -1); r.StatusCode != 400 || v["field"] != field {
			t.Fatalf("%s: %d %v", body, r.StatusCode, v)
		}
	}
	if r, v := announce(freshTenant(), 4<<20, "video/mp4"); r.StatusCode != 413 || v["reason"] != "too_large" {
		t.Fatalf("announced over the limit: %d %v", r.StatusCode, v)
	}
	if r, v := send(t, "POST", srv.URL+"/uploads", "application/json", strings.NewReader(`{"bytes":10,"colour":"red"}`), -1); r.StatusCode != 400 {
		t.Fatalf("an unknown field: %d %v", r.StatusCode, v)
	}
}

// TestUploadMemoryBounded: a 200 MB upload does not grow the gateway's
// heap by more than its two parts in flight and some slack.
func TestUploadMemoryBounded(t *testing.T) {
	srv, _ := uploadsAPI(t, gateway.UploadConfig{})
	video := mediaFiles(t)["video.mp4"]
	const pad = 200 << 20
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	r, v := send(t, "POST", srv.URL+"/uploads?tenant="+freshTenant(), "video/mp4", padded(video, pad), -1)
	close(stop)
	<-sampled
	if r.StatusCode != 201 || v["bytes"] != float64(len(video)+8+pad) || v["frames"] != float64(48) {
		t.Fatalf("upload: %d %v", r.StatusCode, v)
	}
	growth := float64(peak.Load())/(1<<20) - float64(base.HeapAlloc)/(1<<20)
	t.Logf("heap: %.1f MB before, %.1f MB peak (+%.1f MB) over a %d MB upload", float64(base.HeapAlloc)/(1<<20),
		float64(peak.Load())/(1<<20), growth, pad>>20)
	if growth > 64 {
		t.Fatalf("the heap grew by %.1f MB over the upload, want < 64 MB", growth)
	}
}

// TestUploadLapsed: a presigned upload not completed before its URL
// lapses is gone (410), left for retention.
func TestUploadLapsed(t *testing.T) {
	srv, _ := uploadsAPI(t, gateway.UploadConfig{URLExpiry: time.Second})
	tenant := freshTenant()
	r, a := send(t, "POST", srv.URL+"/uploads?tenant="+tenant, "application/json", strings.NewReader(`{"bytes":100}`), -1)
	if r.StatusCode != 201 {
		t.Fatalf("announce: %d %v", r.StatusCode, a)
	}
	time.Sleep(1100 * time.Millisecond)
	if r, v := send(t, "POST", srv.URL+"/uploads/"+a["id"].(string)+"/complete?tenant="+tenant, "", nil, 0); r.StatusCode != 410 ||
		v["code"] != "deleted" || !strings.Contains(fmt.Sprint(v["message"]), "lapsed") {
		t.Fatalf("complete after the URL lapsed: %d %v", r.StatusCode, v)
	}
}

// TestUploadsNamedBySpecs: what POST /uploads records is what a job spec
// may name: uploads of the job's tenant of the right kinds pass the
// lookup; another kind, or another tenant's, is refused by POST /generate
// naming the field.
func TestUploadsNamedBySpecs(t *testing.T) {
	srv, c := uploadsAPI(t, gateway.UploadConfig{})
	files := mediaFiles(t)
	tenant := freshTenant()
	_, img := upload(t, srv, tenant, "image/png", files["image.png"])
	_, vid := upload(t, srv, tenant, "video/mp4", files["video.mp4"])
	ups, err := jobspec.CheckInputs(context.Background(), &jobspec.Job{Tenant: tenant, Image: img["id"].(string), Video: vid["id"].(string),
		FPS: 24, Overlap: 4}, c.Store)
	if err != nil || len(ups) != 2 || ups[0].Kind != "image" || ups[1].Kind != "video" || ups[1].DurationS != 2 {
		t.Fatalf("the lookup of a job's uploads: %+v %v", ups, err)
	}
	spec := func(tenant, field, id string) string {
		return fmt.Sprintf(`{"prompt":"x","durationFrames":20,"tenant":%q,%q:%q}`, tenant, field, id)
	}
	for _, body := range []string{spec(tenant, "image", vid["id"].(string)), spec("other", "image", img["id"].(string))} {
		if r, v := send(t, "POST", srv.URL+"/generate", "application/json", strings.NewReader(body), -1); r.StatusCode != 400 || v["field"] != "image" {
			t.Fatalf("%s: %d %v", body, r.StatusCode, v)
		}
	}
}
