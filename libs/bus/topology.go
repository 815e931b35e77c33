package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology holds the settings of the streams, consumers and KV bucket that
// Declare and DeclarePool apply. Build one with NewTopology and the
// TopologyOptions, each of which checks its own range; a Topology is then
// checked as a whole:
//   - the dedup window is at most the events' max age;
//   - there are at most MaxDeliver backoff delays, and the first equals
//     AckWait (JetStream takes it as the first ack wait).
type Topology struct {
	Replicas   int           // stream replicas
	Duplicates time.Duration // dedup window of every stream
	EventsAge  time.Duration // how long job events are kept
	// AckWait is how long a delivered message stays with its consumer
	// without an ack or AckProgress heartbeat before it is redelivered.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one task message; the dispatcher's
	// attempt counter, not this, decides when a segment has failed.
	MaxDeliver int
	// BackOff are the redelivery delays of segment tasks; at most
	// MaxDeliver of them.
	BackOff []time.Duration
	// WorkerTTL is how long a worker's registration lives without a
	// heartbeat.
	WorkerTTL time.Duration
	// MaxAckPending bounds the unacknowledged messages per consumer.
	MaxAckPending int
	// MaxWaiting bounds the pull requests a pool's consumer holds at once:
	// every idle worker slot keeps one. NATS refuses those beyond it (the
	// slot asks again 200 ms later), and cannot change it on an existing
	// consumer (see DeclarePool).
	MaxWaiting int
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
		MaxWaiting:    16384,
	}
}

// validate checks every field's range, as the options do, and the fields
// together. Its error wraps ErrInvalidOption.
func (t Topology) validate() error {
	errs := []error{}
	for _, opt := range []TopologyOption{
		WithReplicas(t.Replicas), WithDuplicates(t.Duplicates), WithEventsMaxAge(t.EventsAge),
		WithAckWait(t.AckWait), WithMaxDeliver(t.MaxDeliver), WithBackOff(t.BackOff...),
		WithWorkerTTL(t.WorkerTTL), WithMaxAckPending(t.MaxAckPending), WithMaxWaiting(t.MaxWaiting),
	} {
		if err := opt(&Topology{}); err != nil {
			errs = append(errs, err)
		}
	}
	if t.Duplicates > t.EventsAge {
		errs = append(errs, invalid("duplicates window %v exceeds the events max age %v", t.Duplicates, t.EventsAge))
	}
	if len(t.BackOff) > t.MaxDeliver {
		errs = append(errs, invalid("%d backoff delays exceed max deliver %d", len(t.BackOff), t.MaxDeliver))
	}
	if len(t.BackOff) > 0 && t.BackOff[0] != t.AckWait {
		errs = append(errs, invalid("the first backoff delay %v must equal the ack wait %v (JetStream uses it as the first ack wait)", t.BackOff[0], t.AckWait))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bus: topology: %w", err)
	}
	return nil
}

// Declare creates or updates the streams, the dispatcher and stitcher
// consumers and the workers bucket. It is idempotent: every service may call
// it at start-up, and a changed setting updates what exists. opts change the
// Bus's topology (WithTopology) for this call only. The Bus remembers the
// call, to make it again after a loss (Heal).
//
// SPOOL_JOBS and SPOOL_SEGMENTS are work queues, on which consumers may not
// overlap: SPOOL_JOBS has the one consumer dispatcher, and each pool's
// consumer on SPOOL_SEGMENTS (DeclarePool) filters its own subject.
//
// A cluster that has no JetStream quorum for a moment (a node restarting,
// leaders being elected) answers with a timeout or "temporarily
// unavailable": Declare retries those, backing off to 2 s, for up to
// DeclarePatience or until ctx ends, so that a service started during a
// failover waits for it instead of exiting. Any other error returns at once.
func (b *Bus) Declare(ctx context.Context, opts ...TopologyOption) error {
	if err := b.patiently(ctx, "declare the topology", func(ctx context.Context) error { return b.declare(ctx, opts) }); err != nil {
		return err
	}
	b.heal.rememberDeclare(opts)
	return nil
}

// Await waits until the topology that Declare creates exists: the
// streams, the dispatcher's and the stitcher's consumers and the buckets.
// It is what a service whose NATS user may not manage streams (every role
// but RoleAdmin) calls at start-up instead of Declare: an admin declares
// the topology (devstack, `spoolctl nats declare`, the chart's topology
// keeper). It waits for what is missing as Declare waits for a quorum, for
// up to DeclarePatience or until ctx ends, then fails naming what is
// missing. The Bus remembers the call: after a loss, Heal checks again
// (and re-declares the pools of DeclarePool) instead of declaring.
func (b *Bus) Await(ctx context.Context) error {
	err := b.patiently(ctx, "wait for the topology", func(ctx context.Context) error {
		err := b.await(ctx)
		if Missing(err) {
			return fmt.Errorf("%w (%w)", err, errAwaiting)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: declare it with an admin's credentials (spoolctl nats declare)", err)
	}
	b.heal.mu.Lock()
	b.heal.awaited = true
	b.heal.mu.Unlock()
	return nil
}

// errAwaiting marks a missing part of the topology that Await waits for.
var errAwaiting = errors.New("waiting for an admin to declare it")

// await checks, once, that each stream, consumer and bucket of Declare
// exists, reading their information only.
func (b *Bus) await(ctx context.Context) error {
	for _, s := range []string{StreamJobs, StreamSegments, StreamResults, StreamEvents, "KV_" + BucketWorkers, "KV_" + BucketCancelled} {
		if _, err := b.js.Stream(ctx, s); err != nil {
			return fmt.Errorf("bus: stream %s: %w", s, err)
		}
	}
	for _, c := range [][2]string{{StreamJobs, ConsumerDispatcher}, {StreamResults, ConsumerDispatcher}, {StreamResults, ConsumerStitcher}} {
		if _, err := b.js.Consumer(ctx, c[0], c[1]); err != nil {
			return fmt.Errorf("bus: consumer %s on %s: %w", c[1], c[0], err)
		}
	}
	return nil
}

// DeclarePatience bounds how long Declare and DeclarePool wait for a
// JetStream that is unavailable for a moment (see Declare).
const DeclarePatience = 2 * time.Minute

// patiently runs f, each try bounded by 10 s, until it succeeds, fails with
// an error that is not Unavailable, ctx ends, or DeclarePatience has passed.
func (b *Bus) patiently(ctx context.Context, what string, f func(context.Context) error) error {
	deadline := time.Now().Add(DeclarePatience)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(tctx)
		cancel()
		if err == nil || ctx.Err() != nil || !(Unavailable(err) || errors.Is(err, errAwaiting)) || time.Now().Add(wait).After(deadline) {
			return err
		}
		b.log.Warn("nats: JetStream unavailable; trying again", "what", what, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// Unavailable reports whether err is one a JetStream without a quorum or a
// leader gives for a moment: a request that timed out or found no
// responder, or the API's "temporarily unavailable" (503).
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders,
		jetstream.ErrNoStreamResponse, nats.ErrConnectionReconnecting} {
		if errors.Is(err, target) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 503
}

func (b *Bus) declare(ctx context.Context, opts []TopologyOption) error {
	t, err := b.topo.with(opts)
	if err != nil {
		return err
	}
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
		{StreamJobs, jetstream.ConsumerConfig{Durable: ConsumerDispatcher, Description: "job submissions"}},
		{StreamResults, jetstream.ConsumerConfig{Durable: ConsumerDispatcher, Description: "results: segment state, chain hand-off"}},
		{StreamResults, jetstream.ConsumerConfig{Durable: ConsumerStitcher, Description: "results: fragments to append"}},
	}
	for _, c := range consumers {
		c.cfg.AckPolicy, c.cfg.AckWait, c.cfg.MaxAckPending = jetstream.AckExplicitPolicy, t.AckWait, t.MaxAckPending
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
	if _, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketCancelled, TTL: CancelledTTL, History: 1, Storage: jetstream.FileStorage, Replicas: t.Replicas,
		Description: "cancelled jobs: a worker skips their queued segments",
	}); err != nil {
		return fmt.Errorf("bus: declare bucket %s: %w", BucketCancelled, err)
	}
	return nil
}

// DeclarePool creates or updates the durable pull consumer pool-<pool> on
// SPOOL_SEGMENTS, filtered to spool.segments.<pool>, and returns it. Pools
// come from configuration, so each service declares the ones it serves. opts
// change the Bus's topology for this call only. JetStream cannot change a
// consumer's MaxWaiting: an existing consumer keeps its own (one created
// before the setting had JetStream's default, 512; delete it, while its pool
// is idle, to have the topology's). The Bus remembers the pool, to declare
// it again after a loss (Heal).
func (b *Bus) DeclarePool(ctx context.Context, pool string, opts ...TopologyOption) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := b.patiently(ctx, "declare pool "+pool, func(ctx context.Context) (err error) {
		c, err = b.declarePool(ctx, pool, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	b.heal.rememberPool(pool, opts)
	return c, nil
}

func (b *Bus) declarePool(ctx context.Context, pool string, opts []TopologyOption) (jetstream.Consumer, error) {
	name, err := PoolConsumer(pool)
	if err != nil {
		return nil, fmt.Errorf("bus: declare pool: %w", err)
	}
	subject, _ := SegmentsSubject(pool)
	t, err := b.topo.with(opts)
	if err != nil {
		return nil, err
	}
	maxWaiting := t.MaxWaiting
	switch c, err := b.js.Consumer(ctx, StreamSegments, name); {
	case err == nil:
		maxWaiting = c.CachedInfo().Config.MaxWaiting
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("bus: declare consumer %s: %w", name, err)
	}
	c, err := b.js.CreateOrUpdateConsumer(ctx, StreamSegments, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "segment tasks of GPU pool " + pool,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver,
		BackOff:       t.BackOff,
		MaxAckPending: t.MaxAckPending,
		MaxWaiting:    maxWaiting,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: declare consumer %s: %w", name, err)
	}
	return c, nil
}

// Consumer returns an existing durable consumer of a stream; a missing one
// is declared again (Heal), as are the others.
func (b *Bus) Consumer(ctx context.Context, stream, name string) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := b.healed(ctx, func() (err error) { c, err = b.js.Consumer(ctx, stream, name); return err })
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", name, stream, err)
	}
	return c, nil
}

// Cancelled returns the bucket of cancelled jobs, one key per job; a
// missing bucket is declared again (Heal).
func (b *Bus) Cancelled(ctx context.Context) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := b.healed(ctx, func() (err error) { kv, err = b.js.KeyValue(ctx, BucketCancelled); return err })
	if err != nil {
		return nil, fmt.Errorf("bus: bucket %s: %w", BucketCancelled, err)
	}
	return kv, nil
}

// Workers returns the workers KV bucket; a missing bucket is declared
// again (Heal).
func (b *Bus) Workers(ctx context.Context) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := b.healed(ctx, func() (err error) { kv, err = b.js.KeyValue(ctx, BucketWorkers); return err })
	if err != nil {
		return nil, fmt.Errorf("bus: bucket %s: %w", BucketWorkers, err)
	}
	return kv, nil
}
