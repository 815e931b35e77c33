package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names. Prometheus sees them with dots as underscores and the unit
// as a suffix (spool_worker_busy_ratio, spool_segment_phase_duration_seconds).
const (
	MetricBusyRatio     = "spool.worker.busy.ratio"
	MetricEngineTime    = "spool.worker.engine.time"
	MetricSlots         = "spool.worker.slots"
	MetricPhaseDuration = "spool.segment.phase.duration"
	MetricSegments      = "spool.worker.segments"
	MetricGPUUtil       = "spool.gpu.utilization"
	MetricGPUMemUsed    = "spool.gpu.memory.used"
	MetricGPUMemTotal   = "spool.gpu.memory.total"
	MetricGPUTemp       = "spool.gpu.temperature"
	MetricGPUPower      = "spool.gpu.power"
)

// busyWindow is the span over which the busy ratio gauge is taken.
const busyWindow = time.Minute

// metrics are the worker's instruments. The busy ratio is the share of the
// slots' wall time spent inside the engine over the last busyWindow; GPU
// gauges are read from NVML at each collection, only when NVML is present.
type metrics struct {
	w        *Worker
	phase    metric.Float64Histogram
	segments metric.Int64Counter
	reg      metric.Registration

	mu      sync.Mutex
	samples []busySample // oldest first, spanning about busyWindow
}

type busySample struct {
	at   time.Time
	busy time.Duration // summed over the slots
}

func newMetrics(w *Worker) (*metrics, error) {
	mp := w.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter("github.com/spoolvideo/spool/services/worker")
	m := &metrics{w: w, samples: []busySample{{at: time.Now(), busy: w.busyTotal()}}}
	var err error
	if m.phase, err = meter.Float64Histogram(MetricPhaseDuration, metric.WithUnit("s"),
		metric.WithDescription("duration of a segment's phases: queue, denoise, decode, encode, upload"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)); err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	if m.segments, err = meter.Int64Counter(MetricSegments, metric.WithUnit("{segment}"),
		metric.WithDescription("segments settled by this worker, by outcome")); err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	for _, o := range []string{"done", "failed", "cancelled", "abandoned", "returned", "stalled"} { // known series start at zero
		m.segments.Add(context.Background(), 0, metric.WithAttributes(attribute.String("outcome", o), attribute.String("pool", w.cfg.Pool)))
	}
	busy, err := meter.Float64ObservableGauge(MetricBusyRatio, metric.WithUnit("1"),
		metric.WithDescription("share of the slots' wall time spent inside the engine over the last minute"))
	if err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	engine, err := meter.Float64ObservableCounter(MetricEngineTime, metric.WithUnit("s"),
		metric.WithDescription("time spent inside the engine, summed over the slots"))
	if err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	slots, err := meter.Int64ObservableGauge(MetricSlots, metric.WithUnit("{slot}"), metric.WithDescription("engine slots of this worker"))
	if err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	obs := []metric.Observable{busy, engine, slots}
	var util, memUsed, memTotal, temp, power metric.Float64ObservableGauge
	gpus := w.gpus != nil && w.gpus.Available() && len(w.gpus.GPUs()) > 0
	if gpus {
		for _, g := range []struct {
			inst *metric.Float64ObservableGauge
			name string
			unit string
			desc string
		}{
			{&util, MetricGPUUtil, "1", "GPU busy share over NVML's last sample period"},
			{&memUsed, MetricGPUMemUsed, "By", "GPU memory in use"},
			{&memTotal, MetricGPUMemTotal, "By", "GPU memory"},
			{&temp, MetricGPUTemp, "Cel", "GPU temperature"},
			{&power, MetricGPUPower, "W", "GPU power draw"},
		} {
			if *g.inst, err = meter.Float64ObservableGauge(g.name, metric.WithUnit(g.unit), metric.WithDescription(g.desc)); err != nil {
				return nil, fmt.Errorf("worker: metrics: %w", err)
			}
			obs = append(obs, *g.inst)
		}
	}
	pool := attribute.String("pool", w.cfg.Pool)
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		total := w.busyTotal()
		o.ObserveFloat64(busy, m.busyRatio(time.Now(), total), metric.WithAttributes(pool))
		o.ObserveFloat64(engine, total.Seconds(), metric.WithAttributes(pool))
		o.ObserveInt64(slots, int64(len(w.slots)), metric.WithAttributes(pool))
		if !gpus {
			return nil
		}
		for _, g := range w.gpus.GPUs() {
			st, err := w.gpus.Stats(g.UUID)
			if err != nil {
				continue // a GPU that cannot be read is left out of this collection
			}
			attrs := metric.WithAttributes(attribute.String("gpu.uuid", g.UUID), attribute.String("gpu.name", g.Name),
				attribute.Int("gpu.index", g.Index), attribute.String("node", w.node))
			o.ObserveFloat64(util, float64(st.UtilizationPct)/100, attrs)
			o.ObserveFloat64(memUsed, float64(st.MemoryUsed), attrs)
			o.ObserveFloat64(memTotal, float64(st.MemoryTotal), attrs)
			o.ObserveFloat64(temp, float64(st.TemperatureC), attrs)
			o.ObserveFloat64(power, st.PowerW, attrs)
		}
		return nil
	}, obs...)
	if err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) close() { _ = m.reg.Unregister() }

// busyRatio records a sample and returns the ratio over the samples of the
// last busyWindow.
func (m *metrics) busyRatio(now time.Time, total time.Duration) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, busySample{now, total})
	for len(m.samples) > 2 && now.Sub(m.samples[1].at) >= busyWindow {
		m.samples = m.samples[1:]
	}
	first := m.samples[0]
	wall := now.Sub(first.at) * time.Duration(len(m.w.slots))
	if wall <= 0 {
		return 0
	}
	return min(float64(total-first.busy)/float64(wall), 1)
}

// observePhases records one settled segment's phase durations.
func (m *metrics) observePhases(ctx context.Context, pool string, ph map[string]time.Duration) {
	if m == nil {
		return
	}
	for name, d := range ph {
		m.phase.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("phase", name), attribute.String("pool", pool)))
	}
}

// settled counts one segment by outcome: done, failed, cancelled, abandoned, returned, stalled.
func (m *metrics) settled(ctx context.Context, pool, outcome string) {
	if m == nil {
		return
	}
	m.segments.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome), attribute.String("pool", pool)))
}

// busyTotal is the engine time summed over the slots, running segments
// included up to now.
func (w *Worker) busyTotal() time.Duration {
	var d time.Duration
	for _, s := range w.slots {
		d += s.busyNow()
	}
	return d
}

// Stats are a worker's totals since it started, summed over its slots.
type Stats struct {
	Slots    int
	Segments int64         // segments generated and finished
	Engine   time.Duration // inside the engine
	Fetch    time.Duration // waiting in fetches that returned a task (an empty queue's waits are left out)
	Prepare  time.Duration // from fetch to engine start: tail download, encoder start
	Finish   time.Duration // from engine end to DONE: last frames encoded, retime, upload, publish
}

// Stats returns the worker's totals; Engine includes running calls.
func (w *Worker) Stats() Stats {
	st := Stats{Slots: len(w.slots), Engine: w.busyTotal()}
	for _, s := range w.slots {
		st.Segments += s.segments.Load()
		st.Prepare += time.Duration(s.prepare.Load())
		st.Fetch += time.Duration(s.fetch.Load())
		st.Finish += time.Duration(s.finish.Load())
	}
	return st
}
