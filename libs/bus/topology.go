package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Topology holds the settings of the streams, consumers and KV bucket.
type Topology struct {
	Replicas   int           // stream replicas
	Duplicates time.Duration // dedup window of every stream
	EventsAge  time.Duration // how long job events are kept
	// AckWait is how long a segment task stays with a worker without an ack
	// or AckProgress heartbeat before it is redelivered.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one task message; the dispatcher's
	// attempt counter, not this, decides when a segment has failed.
	MaxDeliver int
	// BackOff are the redelivery delays after an unacknowledged delivery;
	// at most MaxDeliver of them.
	BackOff []time.Duration
	// WorkerTTL is how long a worker's registration lives without a
	// heartbeat.
	WorkerTTL time.Duration
	// MaxAckPending bounds the unacknowledged messages per consumer.
	MaxAckPending int
}

// DefaultTopology is what the deploy manifests use.
func DefaultTopology() Topology {
	return Topology{
		Replicas:      1,
		Duplicates:    2 * time.Minute,
		EventsAge:     24 * time.Hour,
		AckWait:       30 * time.Second,
		MaxDeliver:    20,
		BackOff:       []time.Duration{30 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute},
		WorkerTTL:     30 * time.Second,
		MaxAckPending: 10000,
	}
}

func (t Topology) validate() error {
	var errs []error
	if t.Replicas < 1 || t.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: want 1..5", t.Replicas))
	}
	if t.Duplicates <= 0 || t.EventsAge <= 0 || t.WorkerTTL <= 0 {
		errs = append(errs, fmt.Errorf("duplicates window %v, events age %v and worker TTL %v must all be > 0", t.Duplicates, t.EventsAge, t.WorkerTTL))
	}
	if t.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ack wait %v: want ≥ 1s", t.AckWait))
	}
	if t.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("max deliver %d: want ≥ 1", t.MaxDeliver))
	}
	if len(t.BackOff) > t.MaxDeliver {
		errs = append(errs, fmt.Errorf("%d backoff delays exceed max deliver %d", len(t.BackOff), t.MaxDeliver))
	}
	if len(t.BackOff) > 0 && t.BackOff[0] != t.AckWait {
		errs = append(errs, fmt.Errorf("the first backoff delay %v must equal ack wait %v (JetStream uses it as the first ack wait)", t.BackOff[0], t.AckWait))
	}
	for _, d := range t.BackOff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("backoff delay %v must be > 0", d))
		}
	}
	if t.MaxAckPending < 1 {
		errs = append(errs, fmt.Errorf("max ack pending %d: want ≥ 1", t.MaxAckPending))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bus: topology: %w", err)
	}
	return nil
}

// Declare creates or updates the streams, the dispatcher and stitcher
// consumers and the workers bucket. It is idempotent: every service may call
// it at start-up, and a changed setting updates what exists.
func (b *Bus) Declare(ctx context.Context) error {
	t := b.topo
	streams := []jetstream.StreamConfig{
		{Name: StreamJobs, Subjects: []string{SubjectJobSubmit}, Retention: jetstream.WorkQueuePolicy,
			Description: "submitted job specs, consumed by the dispatcher"},
		{Name: StreamSegments, Subjects: []string{SubjectAllSegments}, Retention: jetstream.WorkQueuePolicy,
			Description: "segment tasks, one consumer per GPU pool"},
		{Name: StreamResults, Subjects: []string{SubjectAllResults}, Retention: jetstream.InterestPolicy,
			Description: "segment results, read by the dispatcher and the stitcher"},
		{Name: StreamEvents, Subjects: []string{SubjectAllEvents}, Retention: jetstream.LimitsPolicy, MaxAge: t.EventsAge,
			Description: "job events for clients"},
	}
	for _, sc := range streams {
		sc.Storage, sc.Replicas, sc.Duplicates = jetstream.FileStorage, t.Replicas, t.Duplicates
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("bus: declare stream %s: %w", sc.Name, err)
		}
	}
	consumers := []struct {
		stream string
		cfg    jetstream.ConsumerConfig
	}{
		{StreamJobs, jetstream.ConsumerConfig{Durable: ConsumerDispatcher, AckWait: t.AckWait}},
		{StreamResults, jetstream.ConsumerConfig{Durable: ConsumerDispatcher, AckWait: t.AckWait}},
		{StreamResults, jetstream.ConsumerConfig{Durable: ConsumerStitcher, AckWait: t.AckWait}},
	}
	for _, c := range consumers {
		c.cfg.AckPolicy, c.cfg.MaxAckPending = jetstream.AckExplicitPolicy, t.MaxAckPending
		if _, err := b.js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg); err != nil {
			return fmt.Errorf("bus: declare consumer %s on %s: %w", c.cfg.Durable, c.stream, err)
		}
	}
	if _, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketWorkers, TTL: t.WorkerTTL, History: 1, Storage: jetstream.FileStorage, Replicas: t.Replicas,
		Description: "live workers: pool, models, GPUs, current tasks",
	}); err != nil {
		return fmt.Errorf("bus: declare bucket %s: %w", BucketWorkers, err)
	}
	return nil
}

// DeclarePool creates or updates the durable pull consumer pool-<pool> on
// SPOOL_SEGMENTS, filtered to spool.segments.<pool>, and returns it.
func (b *Bus) DeclarePool(ctx context.Context, pool string) (jetstream.Consumer, error) {
	name, err := PoolConsumer(pool)
	if err != nil {
		return nil, err
	}
	subject, _ := SegmentsSubject(pool)
	t := b.topo
	c, err := b.js.CreateOrUpdateConsumer(ctx, StreamSegments, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "segment tasks of GPU pool " + pool,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver,
		BackOff:       t.BackOff,
		MaxAckPending: t.MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: declare consumer %s: %w", name, err)
	}
	return c, nil
}

// Consumer returns an existing durable consumer of a stream.
func (b *Bus) Consumer(ctx context.Context, stream, name string) (jetstream.Consumer, error) {
	c, err := b.js.Consumer(ctx, stream, name)
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", name, stream, err)
	}
	return c, nil
}

// Workers returns the workers KV bucket.
func (b *Bus) Workers(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.js.KeyValue(ctx, BucketWorkers)
	if err != nil {
		return nil, fmt.Errorf("bus: bucket %s: %w", BucketWorkers, err)
	}
	return kv, nil
}
