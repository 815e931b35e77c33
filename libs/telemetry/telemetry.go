package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry owns the process's tracer and meter providers.
type Telemetry struct {
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	registry *prometheus.Registry
	// Exporting reports whether spans leave the process.
	Exporting bool
}

// Setup builds the providers, installs them and the W3C propagator as the
// globals, and returns them; Shutdown flushes them.
func Setup(ctx context.Context, serviceName string, opts ...Option) (*Telemetry, error) {
	o := options{}
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
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, p := range o.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	if wantExport("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: span exporter: %w", err)
		}
		if !autoexport.IsNoneSpanExporter(exp) {
			t.Exporting = true
			tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		}
	}
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, r := range o.readers {
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}
	if wantExport("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: metric reader: %w", err)
		}
		if !autoexport.IsNoneMetricReader(r) {
			mpOpts = append(mpOpts, sdkmetric.WithReader(r))
		}
	}
	if o.prometheus {
		t.registry = prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(t.registry), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(exp))
	}
	t.tp = sdktrace.NewTracerProvider(tpOpts...)
	t.mp = sdkmetric.NewMeterProvider(mpOpts...)
	otel.SetTracerProvider(t.tp)
	otel.SetMeterProvider(t.mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return t, nil
}

// Tracer returns a named tracer of the provider.
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.tp.Tracer(name) }

// Meter returns a named meter of the provider.
func (t *Telemetry) Meter(name string) metric.Meter { return t.mp.Meter(name) }

// TracerProvider returns the trace provider.
func (t *Telemetry) TracerProvider() *sdktrace.TracerProvider { return t.tp }

// MeterProvider returns the meter provider.
func (t *Telemetry) MeterProvider() *sdkmetric.MeterProvider { return t.mp }

// MetricsHandler serves /metrics in Prometheus format; it answers 404 unless
// Setup was given WithPrometheus.
func (t *Telemetry) MetricsHandler() http.Handler {
	if t.registry == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes pending spans and metrics and stops both providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if err := t.tp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: trace shutdown: %w", err))
	}
	if err := t.mp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: metric shutdown: %w", err))
	}
	return errors.Join(errs...)
}

// wantExport reports whether the environment asks for an exporter: the
// explicit exporter variable, or a general or signal-specific OTLP endpoint.
func wantExport(exporterVar, endpointVar string) bool {
	for _, v := range []string{exporterVar, endpointVar, "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

func newResource(ctx context.Context, serviceName, version string) (*resource.Resource, error) {
	attrs := []resource.Option{
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
	}
	if version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(version)))
	}
	res, err := resource.New(ctx, attrs...)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}
