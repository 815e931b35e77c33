package bus

import (
	"fmt"
	"slices"
	"time"
)

// TopologyOption changes one setting of a Topology. Each checks its own
// range; the settings are then checked together (see Topology). Pass them to
// NewTopology, or to Declare and DeclarePool for one declaration.
type TopologyOption func(*Topology) error

// NewTopology is DefaultTopology with opts applied, checked as a whole.
func NewTopology(opts ...TopologyOption) (Topology, error) {
	return DefaultTopology().with(opts)
}

// with returns a copy of t with opts applied, checked as a whole.
func (t Topology) with(opts []TopologyOption) (Topology, error) {
	t.BackOff = slices.Clone(t.BackOff)
	for _, opt := range opts {
		if err := opt(&t); err != nil {
			return Topology{}, fmt.Errorf("bus: topology: %w", err)
		}
	}
	if err := t.validate(); err != nil {
		return Topology{}, err
	}
	return t, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithReplicas sets the replicas of every stream and of the workers bucket,
// 1..5 (1 by default; 3 in a clustered deployment).
func WithReplicas(n int) TopologyOption {
	return func(t *Topology) error {
		if n < 1 || n > 5 {
			return invalid("replicas %d: want 1..5", n)
		}
		t.Replicas = n
		return nil
	}
}

// WithDuplicates sets the dedup window of every stream: a publish that
// repeats a Nats-Msg-Id within it is stored once. At least 100ms, at most
// the events' max age (2 minutes by default).
func WithDuplicates(d time.Duration) TopologyOption {
	return func(t *Topology) error {
		if d < 100*time.Millisecond {
			return invalid("duplicates window %v: want ≥ 100ms", d)
		}
		t.Duplicates = d
		return nil
	}
}

// WithEventsMaxAge sets how long SPOOL_EVENTS keeps job events (24h by
// default).
func WithEventsMaxAge(d time.Duration) TopologyOption {
	return func(t *Topology) error {
		if d <= 0 {
			return invalid("events max age %v: want > 0", d)
		}
		t.EventsAge = d
		return nil
	}
}

// WithAckWait sets how long a delivered message stays with its consumer
// without an ack or AckProgress before it is redelivered (30s by default).
// With a BackOff, its first delay must equal the ack wait.
func WithAckWait(d time.Duration) TopologyOption {
	return func(t *Topology) error {
		if d <= 0 {
			return invalid("ack wait %v: want > 0", d)
		}
		t.AckWait = d
		return nil
	}
}

// WithMaxDeliver bounds the deliveries of one segment task, ≥ 1 (20 by
// default). The dispatcher's attempt count, not this, fails a segment.
func WithMaxDeliver(n int) TopologyOption {
	return func(t *Topology) error {
		if n < 1 {
			return invalid("max deliver %d: want ≥ 1", n)
		}
		t.MaxDeliver = n
		return nil
	}
}

// WithBackOff sets the redelivery delays of segment tasks: delay i is the
// ack wait of delivery i+1, the last one repeating. The first must equal
// the ack wait, and there may be at most MaxDeliver of them. No delays means
// the ack wait for every delivery.
func WithBackOff(delays ...time.Duration) TopologyOption {
	return func(t *Topology) error {
		for i, d := range delays {
			if d <= 0 {
				return invalid("backoff delay %d is %v: want > 0", i, d)
			}
		}
		t.BackOff = slices.Clone(delays)
		return nil
	}
}

// WithWorkerTTL sets how long a worker's registration in spool_workers
// lives without a heartbeat (30s by default).
func WithWorkerTTL(d time.Duration) TopologyOption {
	return func(t *Topology) error {
		if d < time.Second {
			return invalid("worker TTL %v: want ≥ 1s", d)
		}
		t.WorkerTTL = d
		return nil
	}
}

// WithMaxAckPending bounds the unacknowledged messages of each consumer
// (10000 by default).
func WithMaxAckPending(n int) TopologyOption {
	return func(t *Topology) error {
		if n < 1 {
			return invalid("max ack pending %d: want ≥ 1", n)
		}
		t.MaxAckPending = n
		return nil
	}
}

// WithMaxWaiting sets how many pull requests a pool's consumer holds at once
// (16384 by default; JetStream's own default is 512): one per idle worker
// slot of the pool, so at least the pool's slots. It applies to consumers
// DeclarePool creates; an existing one keeps its own.
func WithMaxWaiting(n int) TopologyOption {
	return func(t *Topology) error {
		if n < 1 {
			return invalid("max waiting %d: want ≥ 1", n)
		}
		t.MaxWaiting = n
		return nil
	}
}
