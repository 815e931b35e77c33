package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Fault kinds. Process faults hit one of the fleet's processes; dependency
// faults take NATS, Postgres or MinIO away for a while and bring them back.
const (
	FaultWorkerKill   = "worker-kill"     // SIGKILL a worker (and its ffmpeg children); start another
	FaultWorkerDrain  = "worker-drain"    // SIGTERM a worker: it drains; start another
	FaultWorkerFreeze = "worker-freeze"   // SIGSTOP a worker's process group, SIGCONT it later
	FaultEngineHang   = "engine-hang"     // a worker whose engine never ends a denoise step nor returns
	FaultDispatcher   = "dispatcher-kill" // SIGKILL one of the two dispatchers; restart it later
	FaultStitcher     = "stitcher-kill"   // SIGKILL one of the two stitchers; start a new one later
	FaultNATSNode     = "nats-node-kill"  // SIGKILL one NATS node; restart it on its store
	FaultNATSWipe     = "nats-node-wipe"  // SIGKILL one NATS node; restart it with its store wiped
	FaultPostgres     = "postgres-restart"
	FaultMinIO        = "minio-restart"
)

// FaultKinds lists every kind, in the report's order.
var FaultKinds = []string{FaultWorkerKill, FaultWorkerDrain, FaultWorkerFreeze, FaultEngineHang, FaultDispatcher, FaultStitcher,
	FaultNATSNode, FaultNATSWipe, FaultPostgres, FaultMinIO}

// dependency reports whether a kind takes a dependency away: its recovery
// is measured from the dependency's return.
func dependency(kind string) bool {
	return kind == FaultNATSNode || kind == FaultNATSWipe || kind == FaultPostgres || kind == FaultMinIO
}

// Fault is one injected fault.
type Fault struct {
	ID     int       `json:"id"`
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	At     time.Time `json:"at"`             // injected
	Back   time.Time `json:"back,omitzero"`  // the process or dependency back (its restart returned)
	Anchor time.Time `json:"anchor"`         // recovery is measured from here
	Note   string    `json:"note,omitempty"` // what it hit: the tasks held, the downtime
	Err    string    `json:"error,omitempty"`
	// Recovery is filled in from Postgres after the run.
	Recovery *Recovery `json:"recovery,omitempty"`
}

// step is one fault of the schedule.
type step struct {
	at   time.Duration // after the monkey starts (churn, and the full form's other faults)
	kind string
	down time.Duration // how long a process or dependency stays away
	pick uint64        // chooses the target among those alive then
}

// schedule draws the monkey's faults in two streams. The full form's:
// worker churn (a kill, or one time in four a drain, every 3..6 s), and
// the other faults, one every 15 s or so, in shuffled rounds of every
// kind, the wiped NATS node once. The short form's: one fault of each kind
// in a random order, the processes' in one stream and the dependencies' in
// the other, each one fault after the other.
func schedule(rng *rand.Rand, d time.Duration, short bool) (churn, faults []step) {
	down := func(kind string) time.Duration {
		u := func(lo, hi float64) time.Duration {
			if short { // the short form's downtimes are the shortest
				hi = lo
			}
			return time.Duration((lo + rng.Float64()*(hi-lo)) * float64(time.Second))
		}
		switch kind {
		case FaultWorkerFreeze:
			return 2*ackWait + u(0, 2)
		case FaultNATSNode, FaultNATSWipe:
			return u(3, 8)
		case FaultDispatcher, FaultStitcher, FaultPostgres, FaultMinIO:
			return u(2, 5)
		}
		return 0
	}
	mk := func(at time.Duration, kind string) step {
		return step{at: at, kind: kind, down: down(kind), pick: rng.Uint64()}
	}
	if short {
		// Two lanes, each one fault after the other: the processes'
		// faults and the dependencies'.
		for _, i := range rng.Perm(len(FaultKinds)) {
			if kind := FaultKinds[i]; dependency(kind) {
				faults = append(faults, mk(0, kind))
			} else {
				churn = append(churn, mk(0, kind))
			}
		}
		return churn, faults
	}
	for at := 3 * time.Second; at < d; at += time.Duration(3000+rng.IntN(3000)) * time.Millisecond {
		kind := FaultWorkerKill
		if rng.IntN(4) == 0 {
			kind = FaultWorkerDrain
		}
		churn = append(churn, mk(at, kind))
	}
	others := []string{FaultWorkerFreeze, FaultEngineHang, FaultDispatcher, FaultStitcher, FaultNATSNode, FaultPostgres, FaultMinIO}
	n := max(int(d/(15*time.Second)), len(others)+1)
	var kinds []string
	for len(kinds) < n-1 {
		for _, i := range rng.Perm(len(others)) {
			kinds = append(kinds, others[i])
		}
	}
	kinds = slices.Insert(kinds[:n-1], rng.IntN(n), FaultNATSWipe)
	gap := (d - 10*time.Second) / time.Duration(n)
	for i, kind := range kinds {
		jitter := time.Duration(rng.IntN(4000)-2000) * time.Millisecond
		faults = append(faults, mk(10*time.Second+time.Duration(i)*gap+jitter, kind))
	}
	return churn, faults
}

// monkey injects the schedule's faults into the fleet.
type monkey struct {
	o  Options
	f  *fleet
	kv func(ctx context.Context) (jetstream.KeyValue, error) // the workers' registry

	mu     sync.Mutex
	faults []*Fault
	drains []*Drain
	hangs  []*Hang
	bg     sync.WaitGroup // watchers of drains, hangs and freezes
}

// shortGap separates the short form's faults: the time the system has to
// show its recovery before the next one.
const shortGap = 3 * time.Second

// run injects the faults of the schedule until ctx ends, and waits for
// the faults' watchers. The first error that stops a fault from being
// injected or undone (a dependency that does not come back) is returned
// after the rest have run.
func (k *monkey) run(ctx context.Context, churn, faults []step, short bool) error {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	loop := func(i int, steps []step, sequential bool) {
		defer wg.Done()
		for _, s := range steps {
			if !sequential {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(start.Add(s.at))):
				}
			}
			if ctx.Err() != nil {
				return
			}
			if err := k.inject(ctx, s); err != nil && errs[i] == nil {
				errs[i] = err
			}
			if sequential {
				select {
				case <-ctx.Done():
					return
				case <-time.After(shortGap):
				}
			}
		}
	}
	wg.Add(2)
	go loop(0, churn, short)
	go loop(1, faults, short)
	wg.Wait()
	k.bg.Wait()
	return errors.Join(errs...)
}

// record adds a fault and returns it.
func (k *monkey) record(kind, target string) *Fault {
	k.mu.Lock()
	defer k.mu.Unlock()
	ft := &Fault{ID: len(k.faults) + 1, Kind: kind, Target: target, At: time.Now()}
	ft.Anchor = ft.At
	k.faults = append(k.faults, ft)
	return ft
}

// inject runs one step; its fault is recorded even when it fails.
func (k *monkey) inject(ctx context.Context, s step) error {
	var ft *Fault
	var err error
	switch s.kind {
	case FaultWorkerKill:
		ft, err = k.workerKill(ctx, s)
	case FaultWorkerDrain:
		ft, err = k.workerDrain(ctx, s)
	case FaultWorkerFreeze:
		ft, err = k.workerFreeze(ctx, s)
	case FaultEngineHang:
		ft, err = k.engineHang(ctx, s)
	case FaultDispatcher, FaultStitcher:
		ft, err = k.serviceKill(ctx, s)
	case FaultNATSNode, FaultNATSWipe:
		ft, err = k.natsNode(ctx, s)
	case FaultPostgres, FaultMinIO:
		ft, err = k.storeRestart(ctx, s)
	default:
		err = fmt.Errorf("chaos: no fault %q", s.kind)
	}
	if ft != nil {
		if err != nil {
			ft.Err = err.Error()
		}
		k.o.logf("fault %d %s %s %s%s", ft.ID, ft.Kind, ft.Target, ft.Note, errNote(err))
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("chaos: %s: %w", s.kind, err)
	}
	return nil
}

func errNote(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

// report returns the faults, drains and hangs injected so far.
func (k *monkey) report() ([]*Fault, []*Drain, []*Hang) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.faults), slices.Clone(k.drains), slices.Clone(k.hangs)
}
