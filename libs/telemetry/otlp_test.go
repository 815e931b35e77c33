package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	colmetric "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/realpart"
)

// receiver is an OTLP/HTTP receiver that records the names of the spans
// and metrics POSTed to it.
type receiver struct {
	mu      sync.Mutex
	spans   []string
	metrics []string
	bad     []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
		rc.bad = append(rc.bad, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/v1/traces":
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			rc.bad = append(rc.bad, "traces: "+err.Error())
			break
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					rc.spans = append(rc.spans, s.Name)
				}
			}
		}
	case "/v1/metrics":
		var req colmetric.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			rc.bad = append(rc.bad, "metrics: "+err.Error())
			break
		}
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					rc.metrics = append(rc.metrics, m.Name)
				}
			}
		}
	default:
		rc.bad = append(rc.bad, "path "+r.URL.Path)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) got() (spans, metrics, bad []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.spans), slices.Clone(rc.metrics), slices.Clone(rc.bad)
}

// emit creates a span and a counter, then shuts the telemetry down, which
// flushes both.
func emit(t *testing.T, env map[string]string) {
	t.Helper()
	clearOTEL(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	tel := setup(t, "spool-test")
	_, s := tel.Tracer("t").Start(context.Background(), "segment.denoise")
	s.End()
	c, err := tel.Meter("t").Int64Counter("spool_segments_done")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestOTLPHTTPExport: a real OTLP/HTTP receiver gets the span and the
// metric when, and only when, an endpoint is set.
func TestOTLPHTTPExport(t *testing.T) {
	tests := []struct {
		name     string
		endpoint bool
	}{
		{name: "no endpoint"},
		{name: "endpoint", endpoint: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			env := map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
			if tt.endpoint {
				env["OTEL_EXPORTER_OTLP_ENDPOINT"] = srv.URL
			}
			emit(t, env)
			spans, metrics, bad := rc.got()
			if len(bad) != 0 {
				t.Fatalf("bad requests: %v", bad)
			}
			wantSpans, wantMetrics := []string(nil), []string(nil)
			if tt.endpoint {
				wantSpans, wantMetrics = []string{"segment.denoise"}, []string{"spool_segments_done"}
			}
			if !slices.Equal(spans, wantSpans) || !slices.Equal(metrics, wantMetrics) {
				t.Fatalf("receiver got spans %v metrics %v, want %v %v", spans, metrics, wantSpans, wantMetrics)
			}
		})
	}
}

// TestNoDefaultConnection listens where the OTLP/HTTP exporter goes by
// default (localhost:4318): with no endpoint nothing connects there, and,
// as a control, an explicit OTEL_TRACES_EXPORTER=otlp does.
func TestNoDefaultConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:4318")
	if err != nil {
		realpart.Missing(t, "the default OTLP/HTTP port 127.0.0.1:4318 is taken, so this test cannot watch it: %v", err)
	}
	var (
		mu    sync.Mutex
		conns int
	)
	rc := &receiver{}
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return conns
	}

	emit(t, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_INSECURE": "true"})
	if n := count(); n != 0 {
		t.Fatalf("%d connections to the default endpoint with no endpoint set", n)
	}

	emit(t, map[string]string{
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_INSECURE": "true",
		"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none",
	})
	if spans, _, _ := rc.got(); count() == 0 || !slices.Equal(spans, []string{"segment.denoise"}) {
		t.Fatalf("control: %d connections, spans %v; the listener does not catch default exports", count(), spans)
	}
}
