package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

// counted counts the requests it passes on.
type counted struct{ n atomic.Int64 }

func (c *counted) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestPublicPresigner: URLs presigned for a public endpoint (a proxy on
// another port, passing the Host on, as an ingress does) name that
// endpoint and not the store's, download and upload through it, and are
// signed without a request.
func TestPublicPresigner(t *testing.T) {
	ctx := context.Background()
	st := devstacktest.Require(t, devstacktest.MinIO)
	rt := &counted{}
	s := open(t, blob.WithTransport(rt))
	public := devstacktest.MinIOProxy(t, st)
	k, _ := blob.Final("public-presign")
	data := random(t, 70<<10)
	if _, err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data)), blob.PutOptions{ContentType: "video/mp4"}); err != nil {
		t.Fatal(err)
	}
	before := rt.n.Load()
	p, err := s.PublicPresigner(public)
	if err != nil {
		t.Fatal(err)
	}
	get, err := p.PresignGet(ctx, k, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := blob.UploadIncoming("acme", blob.NewUploadID())
	put, err := p.PresignPut(ctx, in, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load() - before; n != 0 {
		t.Fatalf("presigning for the public endpoint sent %d requests", n)
	}
	for _, u := range []string{get.String(), put.String()} {
		if !strings.HasPrefix(u, public+"/") || strings.Contains(u, st.S3Endpoint) {
			t.Fatalf("%s: want a URL of %s, without %s", u, public, st.S3Endpoint)
		}
	}
	resp, err := http.Get(get.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET through the public endpoint: %s, %d bytes", resp.Status, len(got))
	}
	req, _ := http.NewRequest(http.MethodPut, put.String(), bytes.NewReader(data[:1000]))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT through the public endpoint: %s", resp.Status)
	}
	if info, err := s.Stat(ctx, in); err != nil || info.Size != 1000 {
		t.Fatalf("stored %+v %v", info, err)
	}
	// The public URL names another host: sent straight to MinIO's own
	// address it is refused, since the host is signed.
	direct := *get
	direct.Host = st.S3Endpoint
	resp, err = http.Get(direct.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the public URL sent to MinIO directly: %s, want 403", resp.Status)
	}
}

func TestPublicPresignerRefusesMalformedEndpoints(t *testing.T) {
	s := open(t)
	for _, e := range []string{"", "media.example.com", "ftp://media.example.com", "https://", "https://u:p@media.example.com",
		"https://media.example.com/spool", "https://media.example.com?x=1", "http://[::1"} {
		if _, err := s.PublicPresigner(e); !errors.Is(err, blob.ErrInvalidOption) {
			t.Errorf("%q: %v, want ErrInvalidOption", e, err)
		}
	}
	for _, e := range []string{"https://media.example.com", "http://127.0.0.1:9001", "https://media.example.com/"} {
		if _, err := s.PublicPresigner(e); err != nil {
			t.Errorf("%q: %v", e, err)
		}
	}
}
