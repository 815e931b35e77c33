package stitcher

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names (Prometheus: dots become underscores, the unit a suffix).
const (
	MetricAppendedBytes = "spool.stitch.appended"
	MetricFinalize      = "spool.stitch.finalize.duration"
	MetricLag           = "spool.stitch.lag"
	MetricJobsFinished  = "spool.jobs.finished" // as the dispatcher's, for outcome succeeded
	MetricJobDuration   = "spool.job.duration"
)

type metrics struct {
	bytes    metric.Int64Counter
	finalize metric.Float64Histogram
	lag      metric.Float64Histogram
	jobs     metric.Int64Counter
	duration metric.Float64Histogram
}

func newMetrics() (*metrics, error) {
	meter := otel.GetMeterProvider().Meter("github.com/spoolvideo/spool/services/stitcher")
	wrap := func(err error) error { return fmt.Errorf("stitcher: metrics: %w", err) }
	m := &metrics{}
	var err error
	if m.bytes, err = meter.Int64Counter(MetricAppendedBytes, metric.WithUnit("By"), metric.WithDescription("bytes appended to final videos")); err != nil {
		return nil, wrap(err)
	}
	if m.finalize, err = meter.Float64Histogram(MetricFinalize, metric.WithUnit("s"),
		metric.WithDescription("recording a job's final output and success, after its last part")); err != nil {
		return nil, wrap(err)
	}
	if m.lag, err = meter.Float64Histogram(MetricLag, metric.WithUnit("s"),
		metric.WithDescription("from a segment's commit to its append to the video (waiting for earlier segments included)"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)); err != nil {
		return nil, wrap(err)
	}
	if m.jobs, err = meter.Int64Counter(MetricJobsFinished, metric.WithUnit("{job}"),
		metric.WithDescription("jobs that ended, by outcome: succeeded, failed, cancelled or rejected")); err != nil {
		return nil, wrap(err)
	}
	if m.duration, err = meter.Float64Histogram(MetricJobDuration, metric.WithUnit("s"),
		metric.WithDescription("from a job's submission to its success"),
		metric.WithExplicitBucketBoundaries(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200)); err != nil {
		return nil, wrap(err)
	}
	m.jobs.Add(context.Background(), 0, metric.WithAttributes(attribute.String("outcome", "succeeded"))) // from zero
	return m, nil
}

func (m *metrics) appended(ctx context.Context, n int, committed time.Time) {
	m.bytes.Add(ctx, int64(n))
	if !committed.IsZero() {
		m.lag.Record(ctx, max(time.Since(committed), 0).Seconds())
	}
}

func (m *metrics) finished(ctx context.Context, d time.Duration, created time.Time) {
	m.finalize.Record(ctx, d.Seconds())
	m.jobs.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "succeeded")))
	if !created.IsZero() {
		m.duration.Record(ctx, time.Since(created).Seconds())
	}
}
