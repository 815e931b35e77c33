package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/spoolvideo/spool/libs/bus"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Metric names (Prometheus: dots become underscores, the unit a suffix).
const (
	MetricQueuePending  = "spool.queue.pending"  // tasks on the pool's consumer not yet delivered (KEDA's lag)
	MetricQueueInflight = "spool.queue.inflight" // tasks delivered to workers, not yet acked
	MetricQueueReady    = "spool.queue.ready"    // segments ready in Postgres behind the pool window
	MetricQueueRunning  = "spool.queue.running"  // segments a worker is running
	MetricQueueLag      = "spool.queue.lag"      // age of the oldest queued segment
	MetricJobsActive    = "spool.jobs.active"    // jobs queued or running, by state
	MetricJobsFinished  = "spool.jobs.finished"  // jobs that ended, by outcome
	MetricFailures      = "spool.segment.failures"
)

// collectTimeout bounds one collection's reads of Postgres and NATS.
const collectTimeout = 3 * time.Second

// metrics are the dispatcher's instruments: the pools' queues (JetStream
// consumer state and Postgres), the jobs in flight, job outcomes and
// segment failures by class.
type metrics struct {
	finished metric.Int64Counter
	failures metric.Int64Counter
	reg      metric.Registration
}

func newMetrics(d *Dispatcher) (*metrics, error) {
	meter := otel.GetMeterProvider().Meter("github.com/spoolvideo/spool/services/dispatcher")
	m := &metrics{}
	wrap := func(err error) error { return fmt.Errorf("dispatcher: metrics: %w", err) }
	var err error
	if m.finished, err = meter.Int64Counter(MetricJobsFinished, metric.WithUnit("{job}"),
		metric.WithDescription("jobs that ended, by outcome: succeeded, failed, cancelled or rejected")); err != nil {
		return nil, wrap(err)
	}
	if m.failures, err = meter.Int64Counter(MetricFailures, metric.WithUnit("{attempt}"),
		metric.WithDescription("failed segment attempts, by error class and pool")); err != nil {
		return nil, wrap(err)
	}
	// Known series start at zero, so that rates and alerts see them before
	// the first event.
	bg := context.Background()
	for _, o := range []string{"succeeded", "failed", "cancelled", "rejected"} {
		if o != "succeeded" { // the stitcher counts successes
			m.finished.Add(bg, 0, metric.WithAttributes(attribute.String("outcome", o)))
		}
	}
	for _, p := range d.pools {
		for _, c := range []spoolv1.ErrorClass{spoolv1.ErrorClass_ERROR_CLASS_TRANSIENT, spoolv1.ErrorClass_ERROR_CLASS_PERMANENT,
			spoolv1.ErrorClass_ERROR_CLASS_ABANDONED, spoolv1.ErrorClass_ERROR_CLASS_CORRUPT, spoolv1.ErrorClass_ERROR_CLASS_RETURNED,
			spoolv1.ErrorClass_ERROR_CLASS_CONDITIONING, spoolv1.ErrorClass_ERROR_CLASS_STALLED} {
			m.failed(bg, p, c, 0)
		}
	}
	gauges := map[string]metric.Int64ObservableGauge{}
	for name, desc := range map[string]string{
		MetricQueuePending:  "tasks on the pool's JetStream consumer not yet delivered to a worker",
		MetricQueueInflight: "tasks delivered to workers and not yet acknowledged",
		MetricQueueReady:    "segments ready in Postgres, waiting behind the pool window for admission",
		MetricQueueRunning:  "segments a worker is running",
		MetricJobsActive:    "jobs queued or running, by state",
	} {
		unit := "{segment}"
		if name == MetricJobsActive {
			unit = "{job}"
		}
		if gauges[name], err = meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc)); err != nil {
			return nil, wrap(err)
		}
	}
	lag, err := meter.Float64ObservableGauge(MetricQueueLag, metric.WithUnit("s"),
		metric.WithDescription("how long the pool's oldest queued segment has waited for a worker"))
	if err != nil {
		return nil, wrap(err)
	}
	obs := []metric.Observable{lag}
	for _, g := range gauges {
		obs = append(obs, g)
	}
	m.reg, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, collectTimeout)
		defer cancel()
		seen := map[string]bool{}
		qs, err := d.store.PoolQueues(ctx)
		if err != nil {
			return err
		}
		var queued, running int64
		for _, q := range qs {
			seen[q.Pool] = true
			pool := metric.WithAttributes(attribute.String("pool", q.Pool))
			o.ObserveInt64(gauges[MetricQueueReady], int64(q.Ready), pool)
			o.ObserveInt64(gauges[MetricQueueRunning], int64(q.Running), pool)
			o.ObserveFloat64(lag, q.OldestQueued.Seconds(), pool)
			queued, running = queued+int64(q.WaitingJobs), running+int64(q.ActiveJobs)
		}
		o.ObserveInt64(gauges[MetricJobsActive], queued, metric.WithAttributes(attribute.String("state", "queued")))
		o.ObserveInt64(gauges[MetricJobsActive], running, metric.WithAttributes(attribute.String("state", "running")))
		for _, p := range d.pools {
			pool := metric.WithAttributes(attribute.String("pool", p))
			if !seen[p] { // an idle pool reads zero, not absent
				o.ObserveInt64(gauges[MetricQueueReady], 0, pool)
				o.ObserveInt64(gauges[MetricQueueRunning], 0, pool)
				o.ObserveFloat64(lag, 0, pool)
			}
			name, err := bus.PoolConsumer(p)
			if err != nil {
				return err
			}
			c, err := d.bus.Consumer(ctx, bus.StreamSegments, name)
			if err != nil {
				return err
			}
			info, err := c.Info(ctx)
			if err != nil {
				return fmt.Errorf("consumer %s: %w", name, err)
			}
			o.ObserveInt64(gauges[MetricQueuePending], int64(info.NumPending), pool)
			o.ObserveInt64(gauges[MetricQueueInflight], int64(info.NumAckPending), pool)
		}
		return nil
	}, obs...)
	if err != nil {
		return nil, wrap(err)
	}
	return m, nil
}

func (m *metrics) close() { _ = m.reg.Unregister() }

// jobFinished counts a job that ended.
func (m *metrics) jobFinished(ctx context.Context, outcome string) {
	m.finished.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}

// failed counts n failed attempts by their error class ("transient", ...).
func (m *metrics) failed(ctx context.Context, pool string, class spoolv1.ErrorClass, n int64) {
	name := strings.ToLower(strings.TrimPrefix(class.String(), "ERROR_CLASS_"))
	m.failures.Add(ctx, n, metric.WithAttributes(attribute.String("class", name), attribute.String("pool", pool)))
}
