package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/telemetry"
)

func clearOTEL(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		t.Setenv(v, "")
	}
}

func TestInMemorySpansAndMetrics(t *testing.T) {
	clearOTEL(t)
	exp := tracetest.NewInMemoryExporter()
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.Setup(context.Background(), "spool-test", telemetry.WithSpanExporter(exp), telemetry.WithMetricReader(reader))
	if err != nil {
		t.Fatal(err)
	}
	if tel.Exporting {
		t.Fatal("exporting with no OTEL variables set")
	}
	ctx, span := otel.Tracer("t").Start(context.Background(), "job.submit")
	_, child := tel.Tracer("t").Start(ctx, "dispatch.plan")
	child.End()
	span.End()
	c, _ := tel.Meter("t").Int64Counter("spool_jobs_total")
	c.Add(context.Background(), 3)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil || len(rm.ScopeMetrics) != 1 {
		t.Fatalf("metrics %+v %v", rm, err)
	}
	spans := exp.GetSpans() // the simple processor exports on End
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || spans[0].Parent.SpanID() != spans[1].SpanContext.SpanID() {
		t.Fatalf("spans %+v", spans)
	}
	if got := spans[0].Resource.Attributes(); !hasAttr(got, "service.name", "spool-test") {
		t.Fatalf("resource %v", got)
	}
}

func TestServiceNameFromEnv(t *testing.T) {
	clearOTEL(t)
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), "from-arg", telemetry.WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	_, s := tel.Tracer("t").Start(context.Background(), "x")
	s.End()
	defer tel.Shutdown(context.Background())
	if spans := exp.GetSpans(); len(spans) != 1 || !hasAttr(spans[0].Resource.Attributes(), "service.name", "from-env") {
		t.Fatal("OTEL_SERVICE_NAME does not win")
	}
}

// TestOTLPHTTPExport: a real OTLP/HTTP receiver gets the span when, and only
// when, an endpoint is configured.
func TestOTLPHTTPExport(t *testing.T) {
	var mu sync.Mutex
	var names []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			var req coltrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(body, &req); err == nil {
				mu.Lock()
				for _, rs := range req.ResourceSpans {
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							names = append(names, s.Name)
						}
					}
				}
				mu.Unlock()
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	run := func(endpoint string) []string {
		clearOTEL(t)
		mu.Lock()
		names = nil
		mu.Unlock()
		if endpoint != "" {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
			t.Setenv("OTEL_METRICS_EXPORTER", "none")
		}
		tel, err := telemetry.Setup(context.Background(), "spool-test")
		if err != nil {
			t.Fatal(err)
		}
		if tel.Exporting != (endpoint != "") {
			t.Fatalf("Exporting = %v with endpoint %q", tel.Exporting, endpoint)
		}
		_, s := tel.Tracer("t").Start(context.Background(), "segment.denoise")
		s.End()
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
	if got := run(""); len(got) != 0 {
		t.Fatalf("exported %v with no endpoint", got)
	}
	if got := run(srv.URL); len(got) != 1 || got[0] != "segment.denoise" {
		t.Fatalf("receiver got %v", got)
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	clearOTEL(t)
	tel, err := telemetry.Setup(context.Background(), "spool-test")
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "debug")
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tel.Tracer("t").Start(context.Background(), "x")
	log.With("job", "j1").InfoContext(ctx, "with span")
	span.End()
	log.InfoContext(context.Background(), "without span")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var first, second map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[1]), &second)
	if first["trace_id"] != span.SpanContext().TraceID().String() || first["span_id"] != span.SpanContext().SpanID().String() || first["job"] != "j1" {
		t.Fatalf("record with span: %v", first)
	}
	if _, ok := second["trace_id"]; ok {
		t.Fatalf("record without span has a trace id: %v", second)
	}
	if _, err := telemetry.NewLogger(&buf, "loud"); err == nil || !strings.Contains(err.Error(), "debug, info, warn, error") {
		t.Fatalf("bad level: %v", err)
	}
}

func TestPrometheusHandler(t *testing.T) {
	clearOTEL(t)
	tel, err := telemetry.Setup(context.Background(), "spool-test", telemetry.WithPrometheus())
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	c, _ := tel.Meter("t").Int64Counter("spool_segments_done")
	c.Add(context.Background(), 2)
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "spool_segments_done_total 2") {
		t.Fatalf("metrics page lacks the counter:\n%s", rec.Body.String())
	}
}

func hasAttr(kvs []attribute.KeyValue, key, want string) bool {
	for _, kv := range kvs {
		if string(kv.Key) == key && kv.Value.Emit() == want {
			return true
		}
	}
	return false
}
