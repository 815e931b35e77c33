package dispatcher_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

// stalledFailures reads spool.segment.failures{class="stalled"} of pool:
// whether the series exists, and its value.
func stalledFailures(t *testing.T, r *sdkmetric.ManualReader, pool string) (bool, int64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != dispatcher.MetricFailures || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				c, _ := dp.Attributes.Value("class")
				p, _ := dp.Attributes.Value("pool")
				if c.AsString() == "stalled" && p.AsString() == pool {
					return true, dp.Value
				}
			}
		}
	}
	return false, 0
}

// TestStalledAttemptsCountAndBackOff: an attempt that ended STALLED (its
// engine made no progress, or passed its deadline) is a counted failure:
// it is retried after the retry backoff, it shows in the lineage with its
// class, a segment that stalls on every attempt fails its job after
// MaxAttempts, and spool.segment.failures counts it by class "stalled",
// a series that exists from the start.
func TestStalledAttemptsCountAndBackOff(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	e := newEnv(t)
	const backoff = 300 * time.Millisecond
	e.cfg.RetryBackoff = backoff
	e.start()
	if ok, n := stalledFailures(t, reader, e.pool()); !ok || n != 0 {
		t.Fatalf("stalled failures before any job: series %v, value %d; want a zero series", ok, n)
	}
	var mu sync.Mutex
	arrived := map[uint32]time.Time{} // attempt of stalls-once's segment 1 → when the harness got it
	w := &worker{fail: func(t *spoolv1.SegmentTask) spoolv1.ErrorClass {
		if t.JobId == "stalls-once" && t.Index == 1 {
			mu.Lock()
			arrived[t.Attempt] = time.Now()
			mu.Unlock()
		}
		if t.JobId == "stalls-ever" || (t.JobId == "stalls-once" && t.Index == 1 && t.Attempt == 1) {
			return spoolv1.ErrorClass_ERROR_CLASS_STALLED
		}
		return spoolv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	}}
	defer e.runWorker(w)()

	once := e.submit(spec(e, `,"id":"stalls-once"`))
	_, segs := e.waitJob(once, "success", allDone)
	attempts, _ := e.store.ListAttempts(context.Background(), once, 1)
	if len(attempts) != 2 || attempts[0].Outcome != store.OutcomeFailed ||
		attempts[0].ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_STALLED.String() || segs[1].CommittedAttempt != 2 {
		t.Fatalf("segment 1 lineage %+v, committed attempt %d", attempts, segs[1].CommittedAttempt)
	}
	mu.Lock()
	gap := arrived[2].Sub(arrived[1])
	mu.Unlock()
	if gap < backoff {
		t.Fatalf("the stalled attempt was retried %v after it was taken; want the %v backoff first", gap, backoff)
	}

	ever := e.submit(spec(e, `,"id":"stalls-ever","mode":"MODE_INDEPENDENT"`))
	j, _ := e.waitJob(ever, "failure", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobFailed })
	if !strings.Contains(j.ErrorMessage, "of 3, ERROR_CLASS_STALLED") {
		t.Fatalf("reason %q", j.ErrorMessage)
	}
	for _, task := range w.seen() {
		if task.JobId == ever && task.Attempt > 3 {
			t.Fatalf("a stalled segment was tried %d times, want at most 3", task.Attempt)
		}
	}
	// The failed job's stalled attempts (3 of its first segment to fail, at
	// least) and the first job's one are counted.
	if _, n := stalledFailures(t, reader, e.pool()); n < 4 {
		t.Fatalf("stalled failures counted: %d, want ≥ 4", n)
	}
}
