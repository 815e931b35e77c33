package devstacktest

import (
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/spoolvideo/spool/libs/devstack"
)

// MinIOProxy serves, until the test ends, a reverse proxy to st's MinIO on
// another port, passing the Host header on unchanged, as an ingress before
// MinIO does: the address browsers would reach MinIO by. It returns its
// URL, http://127.0.0.1:port, the public endpoint to presign for.
func MinIOProxy(t testing.TB, st *devstack.Stack) string {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: st.S3Endpoint}
	p := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // what the URL was signed for
	}})
	t.Cleanup(p.Close)
	return p.URL
}
