package dispatcher_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

// admissions counts, per job, the admissions the dispatchers logged
// ("admitting a submission", at debug level), whichever way the submission
// came.
type admissions struct {
	mu  sync.Mutex
	per map[string][]string // job → the ways ("nats", "postgres")
}

func (a *admissions) Enabled(context.Context, slog.Level) bool { return true }
func (a *admissions) WithAttrs([]slog.Attr) slog.Handler       { return a }
func (a *admissions) WithGroup(string) slog.Handler            { return a }
func (a *admissions) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "admitting a submission" {
		return nil
	}
	var job, via string
	r.Attrs(func(at slog.Attr) bool {
		switch at.Key {
		case "job":
			job = at.Value.String()
		case "via":
			via = at.Value.String()
		}
		return true
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	a.per[job] = append(a.per[job], via)
	return nil
}

func (a *admissions) of(job string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.per[job]...)
}

// TestTwoDispatchersRedriveOnce: submissions recorded in Postgres as the
// gateway records them, a third of them also published on
// spool.jobs.submit, are admitted by two dispatchers that start at once:
// each exactly once (one admission, by the stream or by the re-drive, never
// both, never twice), and a spec the dispatcher refuses is rejected with
// the same field and message as when it comes over NATS alone.
func TestTwoDispatchersRedriveOnce(t *testing.T) {
	st := devstacktest.Private(t, devstacktest.NATS, devstacktest.Postgres)
	ctx := context.Background()
	s, err := store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	connect := func() *bus.Bus {
		b, err := bus.Connect(ctx, st.NATSConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	pub := connect()
	if err := pub.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	const n, pool = 45, "redrive"
	record := func(spec *spoolv1.JobSpec) {
		raw, err := proto.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, created, err := s.RecordSubmission(ctx, store.Submission{JobID: spec.GetId(), Tenant: "default", Spec: raw}); err != nil || !created {
			t.Fatalf("record %s: %v %v", spec.GetId(), created, err)
		}
	}
	var ids []string
	for i := range n {
		spec := &spoolv1.JobSpec{Id: fmt.Sprintf("rd-%d", i), Prompt: "a quiet pond", DurationFrames: 40,
			WindowFrames: 13, OverlapFrames: 4, Width: 96, Height: 64, Steps: 3, Fps: 24, Pool: pool}
		if i%3 == 0 { // also sent on the stream, as the gateway sends it
			if _, err := pub.PublishSubmission(ctx, spec); err != nil {
				t.Fatal(err)
			}
		}
		record(spec)
		ids = append(ids, spec.GetId())
	}
	// Refused by the dispatcher (the pool does not serve the model):
	// once re-driven from Postgres, once over NATS alone.
	bad := func(id string) *spoolv1.JobSpec {
		return &spoolv1.JobSpec{Id: id, Prompt: "x", DurationFrames: 40, Model: "sim", Pool: "nowhere"}
	}
	record(bad("rd-bad-pg"))
	if _, err := pub.PublishSubmission(ctx, bad("rd-bad-nats")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // older than the grace: both ways are open at once

	counts := &admissions{per: map[string][]string{}}
	cfg := dispatcher.Config{Pools: pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: 20 * time.Millisecond, ReconcileEvery: time.Hour,
		RunningStale: time.Hour, QueuedStale: time.Hour, LiveAhead: 2, PoolWindow: 8, OutboxBatch: 64, SubmitBatch: 4,
		SegmentDeadline: time.Minute, RedriveAfter: 200 * time.Millisecond}
	var ready, all sync.WaitGroup
	start := make(chan struct{})
	rctx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); all.Wait() })
	for range 2 {
		b := connect()
		d, err := dispatcher.New(ctx, cfg, b, s, slog.New(counts))
		if err != nil {
			t.Fatal(err)
		}
		ready.Add(1)
		all.Add(1)
		go func() {
			defer all.Done()
			ready.Done()
			<-start
			_ = d.Run(rctx)
		}()
	}
	ready.Wait()
	close(start)

	want := append(ids, "rd-bad-pg", "rd-bad-nats")
	deadline := time.Now().Add(90 * time.Second)
	for {
		k, err := s.CountJobs(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if k == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs recorded", k, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // what a second admission would take to show
	ways := map[string]int{}
	for _, id := range want {
		got := counts.of(id)
		if len(got) != 1 {
			t.Errorf("job %s admitted %d times: %v", id, len(got), got)
			continue
		}
		ways[got[0]]++
		if sub, err := s.GetSubmission(ctx, id); id != "rd-bad-nats" && (err != nil || sub.AdmittedAt == nil) {
			t.Errorf("submission %s: %+v %v", id, sub, err)
		}
	}
	if ways["postgres"] == 0 {
		t.Errorf("nothing re-driven: %v", ways)
	}
	t.Logf("admitted by way: %v", ways)
	if n, err := s.CountWaitingSubmissions(ctx); err != nil || n != 0 {
		t.Fatalf("%d submissions still waiting (%v)", n, err)
	}
	for _, id := range ids {
		segs, err := s.ListSegments(ctx, id)
		if err != nil || len(segs) == 0 {
			t.Fatalf("job %s: %d segments (%v)", id, len(segs), err)
		}
	}
	pg, err := s.GetJob(ctx, "rd-bad-pg")
	if err != nil {
		t.Fatal(err)
	}
	nats, err := s.GetJob(ctx, "rd-bad-nats")
	if err != nil {
		t.Fatal(err)
	}
	if pg.State != store.JobRejected || pg.ErrorField != "pool" || pg.ErrorCode != nats.ErrorCode || pg.ErrorField != nats.ErrorField ||
		pg.ErrorMessage != nats.ErrorMessage {
		t.Fatalf("rejected re-driven %s %s/%s %q; over NATS %s %s/%s %q", pg.State, pg.ErrorCode, pg.ErrorField, pg.ErrorMessage,
			nats.State, nats.ErrorCode, nats.ErrorField, nats.ErrorMessage)
	}
}
