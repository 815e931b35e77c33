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

// WithVersion sets service.version.
func WithVersion(v string) Option {
	return func(o *options) error { o.version = v; return nil }
}

// WithSpanExporter adds an exporter behind a synchronous processor; tests
// pass tracetest.NewInMemoryExporter().
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) error {
		if e == nil {
			return errors.New("telemetry: WithSpanExporter: nil exporter")
		}
		o.processors = append(o.processors, sdktrace.NewSimpleSpanProcessor(e))
		return nil
	}
}

// WithSpanProcessor adds a span processor (e.g. a tracetest.SpanRecorder).
func WithSpanProcessor(p sdktrace.SpanProcessor) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("telemetry: WithSpanProcessor: nil processor")
		}
		o.processors = append(o.processors, p)
		return nil
	}
}

// WithMetricReader adds a metric reader (e.g. sdkmetric.NewManualReader()).
func WithMetricReader(r sdkmetric.Reader) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("telemetry: WithMetricReader: nil reader")
		}
		o.readers = append(o.readers, r)
		return nil
	}
}

// WithPrometheus serves the metrics in Prometheus text format through
// MetricsHandler.
func WithPrometheus() Option {
	return func(o *options) error { o.prometheus = true; return nil }
}
