package worker_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestMetrics: after a three-segment job, the phase histograms hold one
// sample per segment and phase, the settled counter says three done, and
// the engine time and busy ratio are positive.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	w, err := worker.New(worker.Config{ID: "m-" + e.pool, Pool: e.pool, Backend: "ref", Slots: 1, Heartbeat: time.Second},
		e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), worker.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	e.run(t, "worker", w.Run)
	id := e.submit(t, `{"id":"metrics","prompt":"fog","durationFrames":30,"windowFrames":13,"overlapFrames":4,`+
		`"width":96,"height":64,"steps":3,"fps":24,"pool":"`+e.pool+`"}`)
	e.waitDone(t, id)
	var rm metricdata.ResourceMetrics
	deadline := time.Now().Add(5 * time.Second)
	phases, done := map[string]uint64{}, int64(0)
	var engine, busy float64
	for time.Now().Before(deadline) { // the last DONE is acked just after it commits
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		phases, done = map[string]uint64{}, 0
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch data := m.Data.(type) {
				case metricdata.Histogram[float64]:
					if m.Name == worker.MetricPhaseDuration {
						for _, dp := range data.DataPoints {
							v, _ := dp.Attributes.Value("phase")
							phases[v.AsString()] += dp.Count
						}
					}
				case metricdata.Sum[int64]:
					for _, dp := range data.DataPoints {
						if v, _ := dp.Attributes.Value("outcome"); m.Name == worker.MetricSegments && v.AsString() == "done" {
							done += dp.Value
						}
					}
				case metricdata.Sum[float64]:
					if m.Name == worker.MetricEngineTime {
						engine = data.DataPoints[0].Value
					}
				case metricdata.Gauge[float64]:
					if m.Name == worker.MetricBusyRatio {
						busy = data.DataPoints[0].Value
					}
				}
			}
		}
		if done == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []string{"queue", "denoise", "decode", "encode", "upload"} {
		if phases[p] != 3 {
			t.Errorf("phase %s: %d samples, want 3 (%v)", p, phases[p], phases)
		}
	}
	if done != 3 || engine <= 0 || busy <= 0 || busy > 1 {
		t.Fatalf("done %d, engine %.3fs, busy ratio %.3f", done, engine, busy)
	}
}
