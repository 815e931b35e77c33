package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// downloadsAPI is the gateway alone in dev mode over the real stack,
// reaching MinIO as its own least-privilege user, configured by cfg's
// S3PublicEndpoint and Downloads.
func downloadsAPI(t *testing.T, cfg gateway.Config) (*httptest.Server, devstacktest.Clients) {
	t.Helper()
	c := devstacktest.Connect(t, 0)
	s3, err := c.Stack.S3UserConfig("gateway")
	if err != nil {
		t.Fatal(err)
	}
	bl, err := blob.New(s3)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pools, cfg.MaxBody = "default:ref,sim", 4096
	g, err := gateway.New(testConfig(cfg), c.Bus, c.Store, bl, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, g, c.Store), c
}

// finishedJob records a succeeded job whose final video is data, and
// returns its id.
func finishedJob(t *testing.T, c devstacktest.Clients, name string, data []byte) string {
	t.Helper()
	ctx := context.Background()
	id := name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := c.Store.CreateJob(ctx, store.NewJob{Job: store.Job{ID: id, Tenant: "default", Priority: 5, Pool: "default", Model: "ref",
		Mode: "chain", State: store.JobQueued, FPS: 24, Width: 96, Height: 64, TotalFrames: 48}}); err != nil {
		t.Fatal(err)
	}
	key, _ := blob.Final(id)
	if _, err := c.Blob.Put(ctx, key, bytes.NewReader(data), int64(len(data)), blob.PutOptions{ContentType: "video/mp4"}); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	if _, err := c.Store.FinishJob(ctx, store.Final{JobID: id, Key: string(key), SHA256: hex.EncodeToString(h[:]), Bytes: int64(len(data)),
		Frames: 48}); err != nil {
		t.Fatal(err)
	}
	return id
}

// answer is one HTTP answer, read whole, redirects not followed.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func fetch(t *testing.T, method, url string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	noFollow := &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

// noInternal fails when MinIO's own address is anywhere in a: it is the
// cluster's, useless to clients.
func noInternal(t *testing.T, c devstacktest.Clients, what string, a answer) {
	t.Helper()
	for k, vs := range a.header {
		for _, v := range vs {
			if strings.Contains(v, c.Stack.S3Endpoint) {
				t.Errorf("%s: header %s: %s names the internal endpoint %s", what, k, v, c.Stack.S3Endpoint)
			}
		}
	}
	if bytes.Contains(a.body, []byte(c.Stack.S3Endpoint)) {
		t.Errorf("%s: the body names the internal endpoint %s: %s", what, c.Stack.S3Endpoint, a.body)
	}
}

// TestDownloadsPresignedForThePublicEndpoint: with a public endpoint (a
// proxy on another port that passes the Host on, as an ingress does),
// /download redirects to, /status shows, and an announced upload gets,
// URLs of that endpoint which work through it; MinIO's own address is in
// no answer.
func TestDownloadsPresignedForThePublicEndpoint(t *testing.T) {
	public := devstacktest.MinIOProxy(t, devstacktest.Require(t, devstacktest.MinIO))
	srv, c := downloadsAPI(t, gateway.Config{S3PublicEndpoint: public})
	video := bytes.Repeat([]byte("frame "), 20000)
	id := finishedJob(t, c, "public", video)
	viaPublic := func(what, u string) {
		t.Helper()
		if !strings.HasPrefix(u, public+"/") {
			t.Fatalf("%s: %q, want a URL of %s", what, u, public)
		}
		if a := fetch(t, "GET", u); a.status != http.StatusOK || !bytes.Equal(a.body, video) {
			t.Fatalf("%s through the public endpoint: %d, %d bytes", what, a.status, len(a.body))
		}
	}

	a := fetch(t, "GET", srv.URL+"/download/"+id)
	noInternal(t, c, "/download", a)
	if a.status != http.StatusFound {
		t.Fatalf("/download: %d %s", a.status, a.body)
	}
	viaPublic("/download's Location", a.header.Get("Location"))

	a = fetch(t, "GET", srv.URL+"/status/"+id)
	noInternal(t, c, "/status", a)
	var v struct {
		VideoURL    string `json:"video_url"`
		DownloadURL string `json:"download_url"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || !strings.HasPrefix(v.DownloadURL, "/download/"+id+"?exp=") {
		t.Fatalf("/status: %v %s", err, a.body)
	}
	viaPublic("/status's video_url", v.VideoURL)

	// An announced upload is PUT through the public endpoint, then completed.
	mp4 := mediaFiles(t)["video.mp4"]
	tenant := freshTenant()
	r, up := send(t, "POST", srv.URL+"/uploads?tenant="+tenant, "application/json",
		strings.NewReader(fmt.Sprintf(`{"bytes":%d,"content_type":"video/mp4"}`, len(mp4))), -1)
	url, _ := up["upload_url"].(string)
	if r.StatusCode != http.StatusCreated || !strings.HasPrefix(url, public+"/") || strings.Contains(url, c.Stack.S3Endpoint) {
		t.Fatalf("announce: %d %v; want an upload_url of %s", r.StatusCode, up, public)
	}
	if r, _ := send(t, "PUT", url, "", bytes.NewReader(mp4), int64(len(mp4))); r.StatusCode != http.StatusOK {
		t.Fatalf("PUT through the public endpoint: %d", r.StatusCode)
	}
	if r, done := send(t, "POST", srv.URL+"/uploads/"+up["id"].(string)+"/complete?tenant="+tenant, "", nil, 0); r.StatusCode != http.StatusCreated ||
		done["state"] != "ready" || done["bytes"] != float64(len(mp4)) {
		t.Fatalf("complete: %d %v", r.StatusCode, done)
	}
}

// TestDownloadsStreamed: in stream mode /download answers the video itself,
// small or large: whole with its type, length and ETag; a Range with 206
// and Content-Range; HEAD with the headers alone; If-None-Match with 304.
// /status's video_url is /download/{id}, and an upload cannot be
// presigned (no public endpoint): 415. No answer names MinIO's address.
func TestDownloadsStreamed(t *testing.T) {
	srv, c := downloadsAPI(t, gateway.Config{Downloads: gateway.DownloadsStream})
	for _, size := range []int{50 << 10, 3<<20 + 5} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			video := make([]byte, size)
			for i := range video {
				video[i] = byte(i * 7 / 3)
			}
			id := finishedJob(t, c, "streamed", video)
			url := srv.URL + "/download/" + id
			whole := fetch(t, "GET", url)
			noInternal(t, c, "/download", whole)
			etag := whole.header.Get("ETag")
			if whole.status != http.StatusOK || !bytes.Equal(whole.body, video) || whole.header.Get("Content-Type") != "video/mp4" ||
				whole.header.Get("Content-Length") != strconv.Itoa(size) || etag == "" || whole.header.Get("Accept-Ranges") != "bytes" {
				t.Fatalf("GET: %d, %d bytes, headers %v", whole.status, len(whole.body), whole.header)
			}
			part := fetch(t, "GET", url, "Range", "bytes=1000-40999")
			if part.status != http.StatusPartialContent || !bytes.Equal(part.body, video[1000:41000]) ||
				part.header.Get("Content-Range") != fmt.Sprintf("bytes 1000-40999/%d", size) || part.header.Get("Content-Length") != "40000" {
				t.Fatalf("Range: %d, %d bytes, headers %v", part.status, len(part.body), part.header)
			}
			tail := fetch(t, "GET", url, "Range", "bytes=-100")
			if tail.status != http.StatusPartialContent || !bytes.Equal(tail.body, video[size-100:]) {
				t.Fatalf("suffix Range: %d, %d bytes", tail.status, len(tail.body))
			}
			head := fetch(t, "HEAD", url)
			if head.status != http.StatusOK || len(head.body) != 0 || head.header.Get("Content-Length") != strconv.Itoa(size) ||
				head.header.Get("ETag") != etag || head.header.Get("Content-Type") != "video/mp4" {
				t.Fatalf("HEAD: %d, %d bytes, headers %v", head.status, len(head.body), head.header)
			}
			if a := fetch(t, "GET", url, "If-None-Match", etag); a.status != http.StatusNotModified {
				t.Fatalf("If-None-Match: %d", a.status)
			}
			st := fetch(t, "GET", srv.URL+"/status/"+id)
			noInternal(t, c, "/status", st)
			var v struct {
				VideoURL string `json:"video_url"`
			}
			if err := json.Unmarshal(st.body, &v); err != nil || v.VideoURL != "/download/"+id {
				t.Fatalf("/status: video_url %q, want /download/%s (%v)", v.VideoURL, id, err)
			}
		})
	}
	r, v := send(t, "POST", srv.URL+"/uploads?tenant="+freshTenant(), "application/json", strings.NewReader(`{"bytes":100,"content_type":"video/mp4"}`), -1)
	if r.StatusCode != http.StatusUnsupportedMediaType || v["reason"] != "content_type" {
		t.Fatalf("a presigned upload in stream mode: %d %v, want 415", r.StatusCode, v)
	}
	// A presigned upload works in stream mode once there is a public endpoint.
	srv, _ = downloadsAPI(t, gateway.Config{Downloads: gateway.DownloadsStream, S3PublicEndpoint: devstacktest.MinIOProxy(t, c.Stack)})
	if r, v := send(t, "POST", srv.URL+"/uploads?tenant="+freshTenant(), "application/json", strings.NewReader(`{"bytes":100,"content_type":"video/mp4"}`), -1); r.StatusCode != http.StatusCreated {
		t.Fatalf("a presigned upload in stream mode with a public endpoint: %d %v", r.StatusCode, v)
	}
}

// TestDownloadsConfig: a bad mode or public endpoint is refused by New,
// naming the variable.
func TestDownloadsConfig(t *testing.T) {
	c := devstacktest.Connect(t, 0)
	for _, cfg := range []gateway.Config{{Downloads: "proxy"}, {S3PublicEndpoint: "media.example.com"}, {S3PublicEndpoint: "https://media.example.com/spool"}} {
		cfg.MaxBody = 4096
		_, err := gateway.New(testConfig(cfg), c.Bus, c.Store, c.Blob, quiet())
		if err == nil || !strings.Contains(err.Error(), "SPOOL_GATEWAY_") {
			t.Errorf("%+v: %v, want an error naming the variable", cfg.Downloads+cfg.S3PublicEndpoint, err)
		}
	}
}
