package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

// connect returns a Bus on the real embedded NATS of the test stack with
// the topology declared.
func connect(t *testing.T, opts ...bus.Option) *bus.Bus {
	t.Helper()
	st := devstacktest.Require(t, devstacktest.NATS)
	b, err := bus.Connect(context.Background(), config.NATS{URL: st.NATSURL, Name: t.Name()}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Declare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeclareTwiceAndUpdate(t *testing.T) {
	b := connect(t)
	ctx := context.Background()
	for range 2 {
		if err := b.Declare(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.DeclarePool(ctx, "h100"); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{bus.StreamJobs, bus.StreamSegments, bus.StreamResults, bus.StreamEvents} {
		if _, err := b.JetStream().Stream(ctx, name); err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
	}
	// A changed setting updates what exists.
	topo := bus.DefaultTopology()
	topo.EventsAge = 2 * time.Hour
	topo.AckWait, topo.BackOff = 10*time.Second, []time.Duration{10 * time.Second, 20 * time.Second}
	b2 := connect(t, bus.WithTopology(topo))
	if err := b2.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := b2.DeclarePool(ctx, "h100")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := b2.JetStream().Stream(ctx, bus.StreamEvents)
	info, _ := s.Info(ctx)
	cinfo, _ := c.Info(ctx)
	if info.Config.MaxAge != 2*time.Hour || cinfo.Config.AckWait != 10*time.Second || cinfo.Config.FilterSubject != "spool.segments.h100" {
		t.Fatalf("not updated: max age %v, ack wait %v, filter %q", info.Config.MaxAge, cinfo.Config.AckWait, cinfo.Config.FilterSubject)
	}
	if _, err := b2.DeclarePool(ctx, "Bad.Pool"); !errors.Is(err, bus.ErrInvalidToken) {
		t.Fatalf("bad pool: %v", err)
	}
}

func TestTopologyValidation(t *testing.T) {
	bad := bus.DefaultTopology()
	bad.BackOff = []time.Duration{time.Second}
	if err := bus.WithTopology(bad)(nil); err == nil {
		t.Fatal("a first backoff that differs from ack wait was accepted")
	}
}

func TestDuplicatePublishIsStoredOnce(t *testing.T) {
	b := connect(t)
	ctx := context.Background()
	c, err := b.DeclarePool(ctx, "dedup")
	if err != nil {
		t.Fatal(err)
	}
	job := fmt.Sprintf("dedup-%d", time.Now().UnixNano()) // unique across -count runs
	task := &spoolv1.SegmentTask{JobId: job, Index: 4, Attempt: 1, Pool: "dedup", Prompt: "x"}
	a1, err := b.PublishTask(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := b.PublishTask(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Duplicate || !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Fatalf("acks %+v %+v", a1, a2)
	}
	// The consumer's count follows the stream asynchronously: wait for it,
	// then make sure it does not reach two.
	deadline := time.Now().Add(2 * time.Second)
	for {
		info, _ := c.Info(ctx)
		if info.NumPending == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending, want 1", info.NumPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if info, _ := c.Info(ctx); info.NumPending != 1 {
		t.Fatalf("%d pending, want 1", info.NumPending)
	}
	m, err := bus.FetchOne(ctx, c, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bus.DecodeTask(m.Data())
	if err != nil || !proto.Equal(got, task) {
		t.Fatalf("task %v %v", got, err)
	}
	_ = m.Ack()
	if _, err := bus.FetchOne(ctx, c, 100*time.Millisecond); !errors.Is(err, bus.ErrNoMessage) {
		t.Fatalf("second fetch: %v", err)
	}
}

// TestTraceSurvivesPublishAndConsume: the consumer's span is a child of the
// publisher's, in the same trace.
func TestTraceSurvivesPublishAndConsume(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) }()

	b := connect(t)
	ctx := context.Background()
	pubCtx, pub := tp.Tracer("t").Start(ctx, "job.submit")
	res := &spoolv1.SegmentResult{JobId: "traced", Index: 0, Attempt: 1, Phase: spoolv1.Phase_PHASE_DONE}
	if _, err := b.PublishResult(pubCtx, res); err != nil {
		t.Fatal(err)
	}
	pub.End()
	c, err := b.Consumer(ctx, bus.StreamResults, bus.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	var m jetstream.Msg
	for m == nil { // the stream may hold results of other tests
		got, err := bus.FetchOne(ctx, c, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = got.Ack()
		if r, _ := bus.DecodeResult(got.Data()); r.GetJobId() == "traced" {
			m = got
		}
	}
	_, sub := tp.Tracer("t").Start(bus.ContextFromMsg(ctx, m), "dispatch.result")
	sub.End()
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	if spans[1].SpanContext().TraceID() != spans[0].SpanContext().TraceID() || spans[1].Parent().SpanID() != spans[0].SpanContext().SpanID() {
		t.Fatalf("consumer span %v is not a child of %v", spans[1].Parent(), spans[0].SpanContext())
	}
}

func TestSubmitJob(t *testing.T) {
	b := connect(t)
	ctx := context.Background()
	id, ack, err := b.SubmitJob(ctx, demoSpec())
	if err != nil || id == "" || id[0] != 'j' || ack.Stream != bus.StreamJobs {
		t.Fatalf("submit: %q %+v %v", id, ack, err)
	}
	named := demoSpec()
	named.Id = "named-job"
	id1, a1, err := b.SubmitJob(ctx, named)
	if err != nil {
		t.Fatal(err)
	}
	id2, a2, err := b.SubmitJob(ctx, named)
	if err != nil || id1 != "named-job" || id2 != id1 || !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Fatalf("resubmission: %q %q %+v %v", id1, id2, a2, err)
	}
	c, _ := b.Consumer(ctx, bus.StreamJobs, bus.ConsumerDispatcher)
	m, err := bus.FetchOne(ctx, c, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := bus.DecodeJobSpec(m.Data(), m.Headers())
	meta, _ := m.Metadata()
	if err != nil || !proto.Equal(spec, demoSpec()) || bus.JobIDFromSubmission(spec, m.Headers().Get("Nats-Msg-Id"), meta.Sequence.Stream) != id {
		t.Fatalf("dispatcher side: %v %v", spec, err)
	}
	_ = m.Ack()
}

func TestWorkersBucketTTL(t *testing.T) {
	topo := bus.DefaultTopology()
	topo.WorkerTTL = time.Second
	b := connect(t, bus.WithTopology(topo))
	ctx := context.Background()
	kv, err := b.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := &spoolv1.WorkerInfo{Id: "w1", Pool: "default", Backend: "ref", Slots: 2}
	data, _ := proto.Marshal(w)
	if _, err := kv.Put(ctx, "w1", data); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bus.DecodeWorkerInfo(e.Value())
	if err != nil || !proto.Equal(got, w) {
		t.Fatalf("worker %v %v", got, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := kv.Get(ctx, "w1"); errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("registration outlived its TTL")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCancelOnCoreNATS(t *testing.T) {
	b := connect(t)
	subject, _ := bus.CancelSubject("cancel-me")
	sub, err := b.Conn().SubscribeSync(bus.SubjectAllCancels)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PublishCancel(context.Background(), "cancel-me"); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(2 * time.Second)
	if err != nil || m.Subject != subject {
		t.Fatalf("cancel: %v %v", m, err)
	}
}
