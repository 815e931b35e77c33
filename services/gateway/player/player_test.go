package player

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sri(b []byte) string {
	d := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(d[:])
}

func TestFetch(t *testing.T) {
	tgz := tarball(t, map[string]string{"package/dist/hls.min.js": "var Hls;", "package/LICENSE": "Apache-2.0", "package/README.md": "x"})
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.Path
		_, _ = w.Write(tgz)
	}))
	defer srv.Close()
	ctx := context.Background()
	files := []string{"dist/hls.min.js", "LICENSE"}

	dir := t.TempDir()
	p := Package{Name: "hls.js", Version: "1.2.3", Integrity: sri(tgz)}
	if err := Fetch(ctx, srv.Client(), srv.URL, p, files, dir); err != nil {
		t.Fatal(err)
	}
	if asked != "/hls.js/-/hls.js-1.2.3.tgz" {
		t.Fatalf("asked for %s", asked)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "hls.min.js")); string(b) != "var Hls;" {
		t.Fatalf("hls.min.js = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "LICENSE")); string(b) != "Apache-2.0" {
		t.Fatalf("LICENSE = %q", b)
	}

	// A tarball that is not the pinned one writes nothing.
	empty := t.TempDir()
	bad := p
	bad.Integrity = sri([]byte("another"))
	if err := Fetch(ctx, srv.Client(), srv.URL, bad, files, empty); err == nil || !strings.Contains(err.Error(), "integrity mismatch") {
		t.Fatalf("wrong integrity: %v", err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("wrote %d files after a mismatch", len(ents))
	}
	if err := Fetch(ctx, srv.Client(), srv.URL, p, []string{"dist/nope.js"}, empty); err == nil || !strings.Contains(err.Error(), "no file dist/nope.js") {
		t.Fatalf("missing file: %v", err)
	}
	p.Integrity = "sha1-abc"
	if err := Fetch(ctx, srv.Client(), srv.URL, p, files, empty); err == nil || !strings.Contains(err.Error(), "want sha512-") {
		t.Fatalf("bad integrity string: %v", err)
	}
}

func TestTarballURL(t *testing.T) {
	if u := (Package{Name: "@scope/pkg", Version: "2.0.0"}).TarballURL("https://r.example/"); u != "https://r.example/@scope/pkg/-/pkg-2.0.0.tgz" {
		t.Fatal(u)
	}
}
