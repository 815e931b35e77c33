package telemetry

import (
	"errors"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Option configures Setup.
type Option func(*options) error

type options struct {
	version    string
	processors []sdktrace.SpanProcessor
	readers    []sdkmetric.Reader
	prometheus bool
}

// WithVersion sets the service.version resource attribute; an empty
// version leaves it unset.
func WithVersion(v string) Option {
	return func(o *options) error { o.version = v; return nil }
}

// WithSpanExporter adds e behind a synchronous processor, so that a span is
// exported when it ends; tests pass tracetest.NewInMemoryExporter().
// It comes on top of whatever the OTEL_* variables configure.
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) error {
		if e == nil {
			return errors.New("telemetry: with span exporter: nil exporter")
		}
		o.processors = append(o.processors, sdktrace.NewSimpleSpanProcessor(e))
		return nil
	}
}

// WithSpanProcessor adds p, e.g. a tracetest.SpanRecorder or a batch
// processor around a test exporter.
func WithSpanProcessor(p sdktrace.SpanProcessor) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("telemetry: with span processor: nil processor")
		}
		o.processors = append(o.processors, p)
		return nil
	}
}

// WithMetricReader adds r, e.g. sdkmetric.NewManualReader().
func WithMetricReader(r sdkmetric.Reader) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("telemetry: with metric reader: nil reader")
		}
		o.readers = append(o.readers, r)
		return nil
	}
}

// WithPrometheus makes MetricsHandler serve every metric, plus the Go
// runtime and process collectors, in the Prometheus text format.
func WithPrometheus() Option {
	return func(o *options) error { o.prometheus = true; return nil }
}
