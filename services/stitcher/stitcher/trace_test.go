package stitcher_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// TestSpansJoinTheJobTrace: every span the stitcher starts about a job is
// in the job's trace, a child of a span of it, whatever path started the
// work: the sweep (the DONEs never reached the stitcher), a stitcher that
// resumes another's job from the sweep, a live job's stop.
func TestSpansJoinTheJobTrace(t *testing.T) {
	cases := []struct {
		name  string
		id    string
		check func(t *testing.T, e *env, id string) store.Job
	}{
		{"sweep", "tr-sweep", func(t *testing.T, e *env, id string) store.Job {
			tasks := e.chainTasks(t, id, 3)
			for _, task := range tasks {
				e.done(t, task, 1, 0)
			}
			e.waitCommitted(t, id, 3)
			e.loseDones(t) // as if the stitcher had been down
			e.stitcher(t, "s1")
			return e.waitJob(t, id, store.JobSucceeded)
		}},
		{"resume", "tr-resume", func(t *testing.T, e *env, id string) store.Job {
			stop := e.stitcher(t, "s1")
			tasks := e.chainTasks(t, id, 4)
			for _, task := range tasks[:2] {
				e.done(t, task, 1, 0)
			}
			e.waitPieces(t, id, 2)
			stop()
			for _, task := range tasks[2:] {
				e.done(t, task, 1, 0)
			}
			e.waitCommitted(t, id, 4)
			e.loseDones(t)
			e.stitcher(t, "s2") // takes the job over once s1's lease runs out
			return e.waitJob(t, id, store.JobSucceeded)
		}},
		{"live stop", "tr-live", func(t *testing.T, e *env, id string) store.Job {
			e.stitcher(t, "s1")
			submit(t, e, fmt.Sprintf(`{"id":"%s","prompt":"x","model":"sim","live":true,"windowFrames":9,"overlapFrames":3,`+
				`"width":%d,"height":%d,"steps":1,"fps":24,"pool":"%s"}`, id, w, h, e.pool))
			e.nextChain(t, false)
			e.nextChain(t, false)
			e.waitPieces(t, id, 2)
			if err := e.bus.PublishCancel(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			return e.waitFinal(t, id)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			j := c.check(t, e, unique(c.id))
			if j.Traceparent == "" {
				t.Fatalf("job %s has no trace context", j.ID)
			}
			trace := strings.Split(j.Traceparent, "-")[1]
			// The job's success is recorded inside stitch.finalize: wait
			// for the span to end.
			var bad []string
			appends, finalizes := 0, 0
			for deadline := time.Now().Add(10 * time.Second); finalizes == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				bad, appends, finalizes = nil, 0, 0
				for _, s := range spans.Ended() {
					if !hasAttr(s.Attributes(), telemetry.AttrJob, j.ID) || !strings.HasPrefix(s.Name(), "stitch.") {
						continue
					}
					switch s.Name() {
					case "stitch.append":
						appends++
					case "stitch.finalize":
						finalizes++
					}
					if s.SpanContext().TraceID().String() != trace || !s.Parent().IsValid() {
						bad = append(bad, fmt.Sprintf("%s in trace %s under %v", s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID()))
					}
				}
			}
			if len(bad) > 0 || appends == 0 || finalizes != 1 {
				t.Fatalf("the job's trace is %s; %d stitch.append and %d stitch.finalize spans; outside it or without a parent: %v",
					trace, appends, finalizes, bad)
			}
		})
	}
}

func hasAttr(attrs []attribute.KeyValue, key attribute.Key, value string) bool {
	for _, a := range attrs {
		if a.Key == key && a.Value.Emit() == value {
			return true
		}
	}
	return false
}

// waitCommitted waits until the dispatcher has committed n segments of id.
func (e *env) waitCommitted(t *testing.T, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := e.store.GetJob(context.Background(), id)
		if err == nil && j.SegmentsDone >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %d segments committed, want %d", id, j.SegmentsDone, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitPieces waits until the stitcher has appended n pieces of id.
func (e *env) waitPieces(t *testing.T, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps, _ := e.store.ListPieces(context.Background(), id, 0)
		if len(ps) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %d pieces appended, want %d", id, len(ps), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loseDones takes every result pending for the stitchers (the job's, and
// any left by earlier tests), as if JetStream had lost them: only the sweep
// can find the job's work then.
func (e *env) loseDones(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c, err := e.bus.Consumer(ctx, bus.StreamResults, bus.ConsumerStitcher)
	if err != nil {
		t.Fatal(err)
	}
	for {
		batch, err := c.FetchNoWait(64)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n == 0 {
			// What is left is out for redelivery to stitchers that
			// stopped: none holds a result published after they did.
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending == 0 {
				return
			}
		}
	}
}
