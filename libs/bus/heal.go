package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A NATS server can lose its JetStream store (a disk lost, a server
// replaced, an operator's purge): it comes back on the same address with
// no stream, consumer or bucket. Postgres is the truth, so nothing of a
// job is lost with it, but every service must notice and declare the
// topology again on its own, without a restart. A Bus remembers what it
// declared (Declare, DeclarePool) and declares it again:
//   - after every reconnect, in the background (a restarted server may be
//     an empty one);
//   - when Heal is handed an error that says a stream, consumer or bucket
//     is missing (Missing), as the consume loops and publishers do.

// healGap is the least time between two re-declarations: the loops of one
// process that all see the same loss re-declare once.
const healGap = 500 * time.Millisecond

// healer remembers what a Bus declared, and re-declares it.
type healer struct {
	mu       sync.Mutex                  // held while re-declaring: callers queue and share the run
	declared bool                        // Declare: the whole topology (an admin)
	awaited  bool                        // Await: the topology is an admin's; wait for it
	opts     []TopologyOption            // of the last Declare
	pools    map[string][]TopologyOption // DeclarePool's, by pool
	last     time.Time                   // of the last re-declaration
	lastErr  error
}

func (h *healer) rememberDeclare(opts []TopologyOption) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.declared, h.opts = true, slices.Clone(opts)
}

func (h *healer) rememberPool(pool string, opts []TopologyOption) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pools == nil {
		h.pools = map[string][]TopologyOption{}
	}
	h.pools[pool] = slices.Clone(opts)
}

// Missing reports whether err says that a stream, a consumer or a KV
// bucket does not exist on the server, or that nothing answers on a
// stream's subject: what a NATS that lost its store answers. Heal
// declares them again.
func Missing(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{jetstream.ErrStreamNotFound, jetstream.ErrConsumerNotFound, jetstream.ErrConsumerDoesNotExist,
		jetstream.ErrConsumerDeleted, jetstream.ErrBucketNotFound, jetstream.ErrNoStreamResponse, nats.ErrNoResponders,
		nats.ErrStreamNotFound, nats.ErrConsumerNotFound, nats.ErrBucketNotFound, nats.ErrNoStreamResponse} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// Heal declares the topology again when err is Missing, and reports
// whether it did so without error, so that the caller retries at once
// (true) or backs off (false). It declares the streams, consumers and
// buckets of Declare, with the options of the Bus's last Declare, and
// every pool consumer the Bus declared; several callers that see one
// loss at once share one declaration.
func (b *Bus) Heal(ctx context.Context, err error) bool {
	if !Missing(err) {
		return false
	}
	if rerr := b.Redeclare(ctx); rerr != nil {
		b.log.Warn("nats: re-declaring the topology", "cause", err, "err", rerr)
		return false
	}
	return true
}

// Redeclare declares again what the Bus declared (the whole topology of
// Declare at least, and each pool of DeclarePool; after Await, it checks
// that the admin's topology is back, which only an admin can restore), unless another call did
// so within the last half second, whose result it returns. It is what
// Heal and a reconnect run.
func (b *Bus) Redeclare(ctx context.Context) error {
	h := &b.heal
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.last.IsZero() && time.Since(h.last) < healGap {
		return h.lastErr
	}
	pools := make([]string, 0, len(h.pools))
	for p := range h.pools {
		pools = append(pools, p)
	}
	slices.Sort(pools)
	var err error
	switch {
	case h.declared:
		err = b.declare(ctx, h.opts)
	case h.awaited:
		err = b.await(ctx)
	}
	for _, p := range pools {
		if err != nil {
			break
		}
		_, err = b.declarePool(ctx, p, h.pools[p])
	}
	h.last, h.lastErr = time.Now(), err
	if err == nil {
		b.log.Info("nats: topology declared again", "pools", pools)
	}
	return err
}

// healed runs f and, when its error is Missing and Heal declares what is
// missing, runs it once more.
func (b *Bus) healed(ctx context.Context, f func() error) error {
	err := f()
	if err != nil && b.Heal(ctx, err) {
		err = f()
	}
	return err
}

// afterReconnect re-declares, in the background, what a Bus that declared
// anything declared: the server it reconnected to may have lost its store.
// It tries until it succeeds, the Bus closes, or a minute has passed (a
// consume loop that finds something missing later heals it then).
func (b *Bus) afterReconnect() {
	b.heal.mu.Lock()
	declared := b.heal.declared || b.heal.awaited || len(b.heal.pools) > 0
	b.heal.mu.Unlock()
	if !declared {
		return
	}
	go func() {
		deadline := time.Now().Add(time.Minute)
		for wait := 100 * time.Millisecond; time.Now().Before(deadline) && !b.nc.IsClosed(); wait = min(2*wait, 5*time.Second) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := b.Redeclare(ctx)
			cancel()
			if err == nil {
				return
			}
			b.log.Warn("nats: re-declaring the topology after a reconnect", "err", err)
			select {
			case <-b.closed:
				return
			case <-time.After(wait):
			}
		}
	}()
}

// Created returns when a stream (consumer "") or a consumer of it was
// created on the server. A time later than the one seen before means it
// was created again, empty (the server lost its store): every message
// published to the stream before it is gone, and a consumer created after
// a message was published to an interest stream may never have seen it.
func (b *Bus) Created(ctx context.Context, stream, consumer string) (time.Time, error) {
	if consumer == "" {
		s, err := b.js.Stream(ctx, stream)
		if err != nil {
			return time.Time{}, fmt.Errorf("bus: stream %s: %w", stream, err)
		}
		return s.CachedInfo().Created, nil
	}
	c, err := b.js.Consumer(ctx, stream, consumer)
	if err != nil {
		return time.Time{}, fmt.Errorf("bus: consumer %s on %s: %w", consumer, stream, err)
	}
	return c.CachedInfo().Created, nil
}

// Topology returns the settings the Bus declares with (its last Declare's
// options aside).
func (b *Bus) Topology() Topology { return b.topo }
