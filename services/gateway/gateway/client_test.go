package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// testKeys are the admin keys of the tests' gateways, by host:port.
var testKeys sync.Map

// testConfig is cfg with what every gateway needs and a test leaves out:
// a fresh key of its signed URLs.
func testConfig(cfg gateway.Config) gateway.Config {
	if cfg.URLKey == "" {
		cfg.URLKey = config.Secret(devstacktest.URLKey())
	}
	return cfg
}

// newGateway is gateway.New of testConfig(cfg), served for the test with
// an admin key of its own in s, which client sends it.
func newGateway(t *testing.T, cfg gateway.Config, c devstacktest.Clients) *httptest.Server {
	t.Helper()
	g, err := gateway.New(testConfig(cfg), c.Bus, c.Store, c.Blob, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, g, c.Store)
}

// serve serves g for the test with an admin key of its own, recorded in
// s, which client sends it.
func serve(t *testing.T, g *gateway.Gateway, s *store.Store) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	testKeys.Store(srv.Listener.Addr().String(), devstacktest.AdminKey(t, s))
	return srv
}

// keyOf is the admin key of the test gateway srv.
func keyOf(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	k, ok := testKeys.Load(srv.Listener.Addr().String())
	if !ok {
		t.Fatalf("no key for the gateway at %s", srv.URL)
	}
	return k.(string)
}

// client sends a test gateway's admin key with every request to it, as a
// client configured with a key does, unless the request has an
// Authorization header of its own, a context from withoutKey, or is a
// signed URL (?sig=), as a player's. Requests to other hosts (MinIO's
// presigned URLs) go as they are.
var client = &http.Client{Transport: keyed{http.DefaultTransport}}

type noKey struct{}

// withoutKey is ctx for a request that client sends without a key.
func withoutKey(ctx context.Context) context.Context { return context.WithValue(ctx, noKey{}, true) }

type keyed struct{ next http.RoundTripper }

func (k keyed) RoundTrip(req *http.Request) (*http.Response, error) {
	key, ok := testKeys.Load(req.URL.Host)
	if ok && req.Header.Get("Authorization") == "" && req.Context().Value(noKey{}) == nil && !req.URL.Query().Has("sig") {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+key.(string))
	}
	return k.next.RoundTrip(req)
}
