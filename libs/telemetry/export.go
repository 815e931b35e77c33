package telemetry

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The variables that ask for an exporter. autoexport defaults to OTLP
// towards localhost when none is set; spool exports nothing instead, so a
// process without a collector makes no connection attempts.
const (
	envEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envMetricsEndpoint = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envMetricsExporter = "OTEL_METRICS_EXPORTER"
)

// envSpanExporter returns the span exporter that the OTEL_* variables ask
// for, or nil when they ask for none.
func envSpanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if !anySet(envTracesExporter, envTracesEndpoint, envEndpoint) {
		return nil, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: span exporter: %w", err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return nil, nil
	}
	return exp, nil
}

// envMetricReader returns the metric reader that the OTEL_* variables ask
// for, or nil when they ask for none.
func envMetricReader(ctx context.Context) (sdkmetric.Reader, error) {
	if !anySet(envMetricsExporter, envMetricsEndpoint, envEndpoint) {
		return nil, nil
	}
	r, err := autoexport.NewMetricReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: metric reader: %w", err)
	}
	if autoexport.IsNoneMetricReader(r) {
		return nil, nil
	}
	return r, nil
}

func anySet(vars ...string) bool {
	for _, v := range vars {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}
