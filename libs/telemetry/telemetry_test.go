package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/spoolvideo/spool/libs/telemetry"
)

// clearOTEL blanks every OTEL_* variable that Setup or the SDK reads, for
// the duration of the test.
func clearOTEL(t *testing.T) {
	t.Helper()
	for _, v := range []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
		"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
		"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED",
	} {
		t.Setenv(v, "")
	}
}

func setup(t *testing.T, name string, opts ...telemetry.Option) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), name, opts...)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

func TestInMemorySpansAndMetrics(t *testing.T) {
	clearOTEL(t)
	exp := tracetest.NewInMemoryExporter()
	reader := sdkmetric.NewManualReader()
	tel := setup(t, "spool-test", telemetry.WithSpanExporter(exp), telemetry.WithMetricReader(reader))
	if tel.ExportsSpans() || tel.ExportsMetrics() {
		t.Fatal("exporting with no OTEL variables set")
	}

	// The global tracer is the provider's.
	ctx, parent := otel.Tracer("t").Start(context.Background(), "job.submit")
	_, child := tel.Tracer("t").Start(ctx, "dispatch.plan")
	child.End()
	parent.End()
	spans := exp.GetSpans() // the synchronous processor exports on End
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	if spans[0].Name != "dispatch.plan" || spans[0].Parent.SpanID() != spans[1].SpanContext.SpanID() {
		t.Fatalf("child %q has parent %v, want %v", spans[0].Name, spans[0].Parent.SpanID(), spans[1].SpanContext.SpanID())
	}

	c, err := otel.Meter("t").Int64Counter("spool_jobs")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if len(rm.ScopeMetrics) != 1 || rm.ScopeMetrics[0].Metrics[0].Name != "spool_jobs" {
		t.Fatalf("metrics: %+v", rm.ScopeMetrics)
	}
}

// keepExporter keeps its spans on Shutdown, unlike tracetest's.
type keepExporter struct{ *tracetest.InMemoryExporter }

func (keepExporter) Shutdown(context.Context) error { return nil }

func TestShutdownFlushesBatch(t *testing.T) {
	clearOTEL(t)
	exp := keepExporter{tracetest.NewInMemoryExporter()}
	tel := setup(t, "spool-test", telemetry.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(exp)))
	for _, name := range []string{"segment.denoise", "segment.decode", "segment.encode"} {
		_, s := tel.Tracer("t").Start(context.Background(), name)
		s.End()
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("batch exported %d spans before Shutdown; the test proves nothing", n)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 3 {
		t.Fatalf("after Shutdown: %d spans, want 3", n)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestResource(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		opts []telemetry.Option
		want map[string]string
	}{
		{name: "argument", want: map[string]string{"service.name": "from-arg"}},
		{
			name: "OTEL_SERVICE_NAME wins",
			env:  map[string]string{"OTEL_SERVICE_NAME": "from-env"},
			want: map[string]string{"service.name": "from-env"},
		},
		{
			name: "resource attributes",
			env:  map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=dev,spool.pool=h100"},
			want: map[string]string{"service.name": "from-arg", "deployment.environment.name": "dev", "spool.pool": "h100"},
		},
		{
			name: "version",
			opts: []telemetry.Option{telemetry.WithVersion("1.2.3")},
			want: map[string]string{"service.version": "1.2.3", "telemetry.sdk.language": "go"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTEL(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			exp := tracetest.NewInMemoryExporter()
			tel := setup(t, "from-arg", append(tt.opts, telemetry.WithSpanExporter(exp))...)
			_, s := tel.Tracer("t").Start(context.Background(), "x")
			s.End()
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("got %d spans", len(spans))
			}
			got := attrs(spans[0].Resource.Attributes())
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range []string{"host.name", "process.pid"} {
				if got[k] == "" {
					t.Errorf("resource lacks %s: %v", k, got)
				}
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opt  telemetry.Option
		want string
	}{
		{"nil exporter", telemetry.WithSpanExporter(nil), "nil exporter"},
		{"nil processor", telemetry.WithSpanProcessor(nil), "nil processor"},
		{"nil reader", telemetry.WithMetricReader(nil), "nil reader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTEL(t)
			_, err := telemetry.Setup(context.Background(), "spool-test", tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestExportDecision: an exporter exists only when an endpoint or an
// exporter variable asks for one.
func TestExportDecision(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer sink.Close()
	tests := []struct {
		name                 string
		env                  map[string]string
		wantSpans, wantMetrs bool
	}{
		{name: "nothing set"},
		{name: "protocol only", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{name: "exporters none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}},
		{
			name:      "endpoint",
			env:       map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			wantSpans: true, wantMetrs: true,
		},
		{
			name:      "traces endpoint only",
			env:       map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.URL + "/v1/traces", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			wantSpans: true,
		},
		{
			name:      "metrics endpoint only",
			env:       map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": sink.URL + "/v1/metrics", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			wantMetrs: true,
		},
		{
			name:      "endpoint but metrics none",
			env:       map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_METRICS_EXPORTER": "none"},
			wantSpans: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTEL(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			tel := setup(t, "spool-test")
			if tel.ExportsSpans() != tt.wantSpans || tel.ExportsMetrics() != tt.wantMetrs {
				t.Fatalf("exports spans %v metrics %v, want %v %v", tel.ExportsSpans(), tel.ExportsMetrics(), tt.wantSpans, tt.wantMetrs)
			}
			// Spans exist and propagate whether or not they are exported.
			ctx, s := tel.Tracer("t").Start(context.Background(), "x")
			defer s.End()
			if !s.SpanContext().IsValid() || !s.SpanContext().IsSampled() {
				t.Fatalf("span context %v is not a valid sampled one", s.SpanContext())
			}
			carrier := propagation.MapCarrier{}
			otel.GetTextMapPropagator().Inject(ctx, carrier)
			if !strings.Contains(carrier.Get("traceparent"), s.SpanContext().TraceID().String()) {
				t.Fatalf("traceparent %q lacks the trace id", carrier.Get("traceparent"))
			}
		})
	}
}

func TestPrometheusHandler(t *testing.T) {
	clearOTEL(t)
	tel := setup(t, "spool-test", telemetry.WithPrometheus())
	c, err := tel.Meter("t").Int64Counter("spool_segments_done")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 2, metric.WithAttributes(attribute.String("pool", "h100")))
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`spool_segments_done_total{pool="h100"} 2`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics page lacks %q:\n%s", want, body)
		}
	}

	plain := setup(t, "spool-test")
	rec = httptest.NewRecorder()
	plain.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("without WithPrometheus: status %d, want 404", rec.Code)
	}
}

func TestShutdownJoinsErrors(t *testing.T) {
	clearOTEL(t)
	tel := setup(t, "spool-test", telemetry.WithSpanExporter(failExporter{}))
	_, s := tel.Tracer("t").Start(context.Background(), "x")
	s.End()
	err := tel.Shutdown(context.Background())
	if !errors.Is(err, errShutdown) || !strings.Contains(err.Error(), "telemetry: shut down traces") {
		t.Fatalf("err = %v", err)
	}
}

var errShutdown = errors.New("exporter shut down badly")

type failExporter struct{}

func (failExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (failExporter) Shutdown(context.Context) error                             { return errShutdown }

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}
