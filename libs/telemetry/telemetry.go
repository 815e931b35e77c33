package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry owns the process's tracer and meter providers.
type Telemetry struct {
	tp             *sdktrace.TracerProvider
	mp             *sdkmetric.MeterProvider
	registry       *prometheus.Registry
	exportsSpans   bool
	exportsMetrics bool

	shutdownOnce sync.Once
	shutdownErr  error
}

// Setup builds a tracer provider and a meter provider configured by the
// standard OTEL_* variables and opts, installs them and the W3C trace
// context and baggage propagator as the globals, and returns them. Call
// Shutdown to flush them.
//
// Spans are always sampled and propagated (OTEL_TRACES_SAMPLER aside), so
// logs carry trace ids; they leave the process only when an OTLP endpoint
// or an exporter variable asks for it.
func Setup(ctx context.Context, serviceName string, opts ...Option) (*Telemetry, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	res, err := newResource(ctx, serviceName, o.version)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{}

	// The Prometheus reader first: it holds nothing to release on a
	// later failure.
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, r := range o.readers {
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}
	if o.prometheus {
		reg, promReader, err := newPrometheus()
		if err != nil {
			return nil, err
		}
		t.registry = reg
		mpOpts = append(mpOpts, sdkmetric.WithReader(promReader))
	}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, p := range o.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	exp, err := envSpanExporter(ctx)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		t.exportsSpans = true
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}

	reader, err := envMetricReader(ctx)
	if err != nil {
		return nil, errors.Join(err, shutdownExporter(ctx, exp))
	}
	if reader != nil {
		t.exportsMetrics = true
		mpOpts = append(mpOpts, sdkmetric.WithReader(reader))
	}

	t.tp = sdktrace.NewTracerProvider(tpOpts...)
	t.mp = sdkmetric.NewMeterProvider(mpOpts...)
	otel.SetTracerProvider(t.tp)
	otel.SetMeterProvider(t.mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return t, nil
}

// Tracer returns the named tracer of the provider.
func (t *Telemetry) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return t.tp.Tracer(name, opts...)
}

// Meter returns the named meter of the provider.
func (t *Telemetry) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return t.mp.Meter(name, opts...)
}

// TracerProvider returns the tracer provider.
func (t *Telemetry) TracerProvider() *sdktrace.TracerProvider { return t.tp }

// MeterProvider returns the meter provider.
func (t *Telemetry) MeterProvider() *sdkmetric.MeterProvider { return t.mp }

// ExportsSpans reports whether the OTEL_* variables configured a span
// exporter, i.e. whether spans leave the process (options aside).
func (t *Telemetry) ExportsSpans() bool { return t.exportsSpans }

// ExportsMetrics reports whether the OTEL_* variables configured a metric
// exporter (options aside).
func (t *Telemetry) ExportsMetrics() bool { return t.exportsMetrics }

// ForceFlush exports the spans and metrics still buffered, e.g. before a
// worker acknowledges a message.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	var errs []error
	if err := t.tp.ForceFlush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: flush traces: %w", err))
	}
	if err := t.mp.ForceFlush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: flush metrics: %w", err))
	}
	return errors.Join(errs...)
}

// Shutdown flushes pending spans and metrics and stops both providers;
// their errors are joined. Later calls return the first call's result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		var errs []error
		if err := t.tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: shut down traces: %w", err))
		}
		if err := t.mp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: shut down metrics: %w", err))
		}
		t.shutdownErr = errors.Join(errs...)
	})
	return t.shutdownErr
}

// shutdownExporter releases an exporter that Setup made but will not use.
func shutdownExporter(ctx context.Context, e sdktrace.SpanExporter) error {
	if e == nil {
		return nil
	}
	if err := e.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shut down span exporter: %w", err)
	}
	return nil
}
