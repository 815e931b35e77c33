package stitcher

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Metric names (Prometheus: dots become underscores, the unit a suffix).
const (
	MetricAppendedBytes = "spool.stitch.appended"
	MetricFinalize      = "spool.stitch.finalize.duration"
)

type metrics struct {
	bytes    metric.Int64Counter
	finalize metric.Float64Histogram
}

func newMetrics() (*metrics, error) {
	meter := otel.GetMeterProvider().Meter("github.com/spoolvideo/spool/services/stitcher")
	b, err := meter.Int64Counter(MetricAppendedBytes, metric.WithUnit("By"), metric.WithDescription("bytes appended to final videos"))
	if err != nil {
		return nil, fmt.Errorf("stitcher: metrics: %w", err)
	}
	f, err := meter.Float64Histogram(MetricFinalize, metric.WithUnit("s"),
		metric.WithDescription("recording a job's final output and success, after its last part"))
	if err != nil {
		return nil, fmt.Errorf("stitcher: metrics: %w", err)
	}
	return &metrics{bytes: b, finalize: f}, nil
}

func (m *metrics) appended(ctx context.Context, n int) { m.bytes.Add(ctx, int64(n)) }

func (m *metrics) finished(ctx context.Context, d time.Duration) { m.finalize.Record(ctx, d.Seconds()) }
