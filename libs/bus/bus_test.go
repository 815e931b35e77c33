package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

// connect returns a Bus on the real embedded NATS of the test stack with
// the topology declared.
func connect(t *testing.T, opts ...bus.Option) *bus.Bus {
	t.Helper()
	st := devstacktest.Require(t, devstacktest.NATS)
	cfg := st.NATSConfig()
	cfg.Name = t.Name()
	b, err := bus.Connect(context.Background(), cfg, opts...)
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
		if _, err := b.DeclarePool(ctx, "a10"); err != nil { // pools do not overlap on the work queue
			t.Fatal(err)
		}
	}
	for _, name := range []string{bus.StreamJobs, bus.StreamSegments, bus.StreamResults, bus.StreamEvents} {
		s, err := b.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info, _ := s.Info(ctx)
		if info.Config.Duplicates != 2*time.Minute || info.Config.Storage != jetstream.FileStorage || info.Config.Replicas != 1 {
			t.Errorf("stream %s: duplicates %v, storage %v, replicas %d", name, info.Config.Duplicates, info.Config.Storage, info.Config.Replicas)
		}
	}
	for _, c := range []struct{ stream, name string }{
		{bus.StreamJobs, bus.ConsumerDispatcher}, {bus.StreamResults, bus.ConsumerDispatcher},
		{bus.StreamResults, bus.ConsumerStitcher}, {bus.StreamSegments, "pool-h100"}, {bus.StreamSegments, "pool-a10"},
	} {
		if _, err := b.Consumer(ctx, c.stream, c.name); err != nil {
			t.Errorf("consumer: %v", err)
		}
	}

	// A changed setting updates what exists, per call or per Bus.
	if err := b.Declare(ctx, bus.WithEventsMaxAge(2*time.Hour), bus.WithWorkerTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c, err := b.DeclarePool(ctx, "h100", bus.WithAckWait(10*time.Second), bus.WithBackOff(10*time.Second, 20*time.Second), bus.WithMaxDeliver(5))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := b.JetStream().Stream(ctx, bus.StreamEvents)
	info, _ := s.Info(ctx)
	cinfo, _ := c.Info(ctx)
	kv, _ := b.Workers(ctx)
	kvs, _ := kv.Status(ctx)
	if info.Config.MaxAge != 2*time.Hour || kvs.TTL() != time.Minute {
		t.Errorf("stream not updated: events max age %v, workers TTL %v", info.Config.MaxAge, kvs.TTL())
	}
	if cinfo.Config.AckWait != 10*time.Second || cinfo.Config.MaxDeliver != 5 || len(cinfo.Config.BackOff) != 2 || cinfo.Config.FilterSubject != "spool.segments.h100" {
		t.Errorf("consumer not updated: %+v", cinfo.Config)
	}
	topo, err := bus.NewTopology(bus.WithEventsMaxAge(3 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := connect(t, bus.WithTopology(topo)).Declare(ctx); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(ctx); info.Config.MaxAge != 3*time.Hour {
		t.Errorf("events max age %v, want 3h", info.Config.MaxAge)
	}
	// Back to the defaults, so that other tests see them.
	if err := b.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeclarePool(ctx, "h100"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeclarePool(ctx, "Bad.Pool"); !errors.Is(err, bus.ErrInvalidToken) {
		t.Errorf("bad pool: %v", err)
	}
	if err := b.Declare(ctx, bus.WithReplicas(0)); !errors.Is(err, bus.ErrInvalidOption) {
		t.Errorf("replicas 0: %v", err)
	}
}

// TestPoolMaxWaiting: a pool's new consumer holds the topology's pull
// requests (one per idle slot of a big pool); an existing consumer keeps
// its own, which JetStream cannot change, and declaring it again works.
func TestPoolMaxWaiting(t *testing.T) {
	b := connect(t)
	ctx := context.Background()
	c, err := b.DeclarePool(ctx, "wide", bus.WithMaxWaiting(4096))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config.MaxWaiting; got != 4096 {
		t.Errorf("new consumer: max waiting %d, want 4096", got)
	}
	if _, err := b.JetStream().CreateOrUpdateConsumer(ctx, bus.StreamSegments, jetstream.ConsumerConfig{Durable: "pool-older",
		FilterSubject: "spool.segments.older", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	c, err = b.DeclarePool(ctx, "older")
	if err != nil {
		t.Fatalf("declaring a consumer made with the server's max waiting: %v", err)
	}
	if got := c.CachedInfo().Config.MaxWaiting; got != 512 {
		t.Errorf("existing consumer: max waiting %d, want the server's 512 kept", got)
	}
}

func TestPublishNeedsMsgID(t *testing.T) {
	b := connect(t)
	if _, err := b.Publish(context.Background(), "spool.events.nomsgid", "", &spoolv1.JobEvent{}); !errors.Is(err, bus.ErrMissingMsgID) {
		t.Fatalf("publish without a msg id: %v", err)
	}
	if _, err := b.PublishTask(context.Background(), &spoolv1.SegmentTask{JobId: "j", Pool: "no pool"}); !errors.Is(err, bus.ErrInvalidToken) {
		t.Fatalf("task to a bad pool: %v", err)
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
// publisher's, in the same trace, over JetStream and over core NATS.
func TestTraceSurvivesPublishAndConsume(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	defer func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) }()

	b := connect(t)
	ctx := context.Background()
	job := fmt.Sprintf("traced-%d", time.Now().UnixNano())
	subject, _ := bus.CancelSubject(job)
	cancelSub, err := b.Conn().SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelSub.Unsubscribe()
	cases := []struct {
		name string
		// send publishes from ctx; receive returns the consumer's context.
		send    func(ctx context.Context) error
		receive func(ctx context.Context) (context.Context, error)
	}{
		{
			name: "jetstream",
			send: func(ctx context.Context) error {
				_, err := b.PublishResult(ctx, &spoolv1.SegmentResult{JobId: job, Attempt: 1, Phase: spoolv1.Phase_PHASE_DONE})
				return err
			},
			receive: func(ctx context.Context) (context.Context, error) {
				c, err := b.Consumer(ctx, bus.StreamResults, bus.ConsumerDispatcher)
				if err != nil {
					return nil, err
				}
				for { // the stream may hold results of other tests
					m, err := bus.FetchOne(ctx, c, 2*time.Second)
					if err != nil {
						return nil, err
					}
					_ = m.Ack()
					if r, _ := bus.DecodeResult(m.Data()); r.GetJobId() == job {
						if m.Headers().Get(bus.HeaderContentType) != bus.ContentProtobuf {
							return nil, fmt.Errorf("content type %q", m.Headers().Get(bus.HeaderContentType))
						}
						return bus.ContextFromMsg(ctx, m), nil
					}
				}
			},
		},
		{
			name: "core cancel",
			send: func(ctx context.Context) error { return b.PublishCancel(ctx, job) },
			receive: func(ctx context.Context) (context.Context, error) {
				m, err := cancelSub.NextMsg(2 * time.Second)
				if err != nil {
					return nil, err
				}
				return bus.ContextFromNATSMsg(ctx, m), nil
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec.Reset()
			pubCtx, pub := tp.Tracer("t").Start(ctx, "job.submit")
			if err := c.send(pubCtx); err != nil {
				t.Fatal(err)
			}
			pub.End()
			subCtx, err := c.receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, sub := tp.Tracer("t").Start(subCtx, "dispatch.result")
			sub.End()
			spans := rec.Ended()
			if len(spans) != 2 {
				t.Fatalf("%d spans", len(spans))
			}
			if spans[1].SpanContext().TraceID() != spans[0].SpanContext().TraceID() || spans[1].Parent().SpanID() != spans[0].SpanContext().SpanID() || !spans[1].Parent().IsRemote() {
				t.Fatalf("consumer span %v is not a remote child of %v", spans[1].Parent(), spans[0].SpanContext())
			}
		})
	}
}

func TestSubmitJob(t *testing.T) {
	b := connect(t)
	ctx := context.Background()
	anon, ack, err := b.SubmitJob(ctx, demoSpec())
	if err != nil || anon != fmt.Sprintf("j%d", ack.Sequence) || ack.Stream != bus.StreamJobs {
		t.Fatalf("submit: %q %+v %v", anon, ack, err)
	}
	named := demoSpec()
	named.Id = fmt.Sprintf("named-%d", time.Now().UnixNano()) // unique across -count runs
	id1, a1, err := b.SubmitJob(ctx, named)
	if err != nil {
		t.Fatal(err)
	}
	id2, a2, err := b.SubmitJob(ctx, named)
	if err != nil || id1 != named.Id || id2 != id1 || a1.Duplicate || !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Fatalf("resubmission: %q %q %+v %v", id1, id2, a2, err)
	}
	// The dispatcher's side derives the same ids, each job once.
	want := map[string]*spoolv1.JobSpec{anon: demoSpec(), id1: named}
	c, err := b.Consumer(ctx, bus.StreamJobs, bus.ConsumerDispatcher)
	if err != nil {
		t.Fatal(err)
	}
	for len(want) > 0 {
		m, err := bus.FetchOne(ctx, c, time.Second)
		if err != nil {
			t.Fatalf("fetch with %d jobs to come: %v", len(want), err)
		}
		_ = m.Ack()
		spec, err := bus.DecodeJobSpec(m.Data(), m.Headers())
		if err != nil {
			t.Fatal(err)
		}
		meta, _ := m.Metadata()
		id := bus.JobIDFromSubmission(spec, m.Headers().Get(jetstream.MsgIDHeader), meta.Sequence.Stream)
		if w, ok := want[id]; ok {
			if !proto.Equal(spec, w) {
				t.Fatalf("job %s: %v, want %v", id, spec, w)
			}
			delete(want, id)
		}
	}
	if m, err := bus.FetchOne(ctx, c, 100*time.Millisecond); !errors.Is(err, bus.ErrNoMessage) {
		t.Fatalf("a job left over: %v %v", m, err)
	}
}

func TestWorkersBucketTTL(t *testing.T) {
	b := connect(t)
	ctx := context.Background()
	if err := b.Declare(ctx, bus.WithWorkerTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Declare(context.Background()) })
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

func TestVoidOnCoreNATS(t *testing.T) {
	b := connect(t)
	sub, err := b.Conn().SubscribeSync(bus.SubjectAllVoids)
	if err != nil {
		t.Fatal(err)
	}
	const key = "jobs/void-me/seg/3/a1/tail.bin"
	if err := b.PublishVoid(context.Background(), "void-me", key); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if job, got, err := bus.VoidOf(m); err != nil || job != "void-me" || got != key {
		t.Fatalf("void of %q: %q %q %v", m.Subject, job, got, err)
	}
	if _, _, err := bus.VoidOf(&nats.Msg{Subject: "spool.control.void.x"}); !errors.Is(err, bus.ErrInvalidToken) {
		t.Fatalf("an empty void accepted: %v", err)
	}
}

// SPOOL_NATS_REPLICAS reaches the topology: out of range is refused at
// Connect, and 3 replicas on a single server are refused by the server
// at Declare, with the stream named.
func TestConnectReplicasFromConfig(t *testing.T) {
	st := devstacktest.Require(t, devstacktest.NATS)
	ctx := t.Context()
	cfg := st.NATSConfig()
	cfg.Replicas = 6
	if _, err := bus.Connect(ctx, cfg); !errors.Is(err, bus.ErrInvalidOption) {
		t.Fatalf("replicas 6: %v, want ErrInvalidOption", err)
	}
	cfg.Replicas = 3
	b, err := bus.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Declare(ctx); err == nil {
		t.Fatal("3 replicas declared on a single server")
	} else if !strings.Contains(err.Error(), bus.StreamJobs) {
		t.Errorf("declare with 3 replicas: %v, want the stream named", err)
	}
}
