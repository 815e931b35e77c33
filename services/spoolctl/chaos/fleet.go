package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
)

// role is what a process of the fleet is.
type role string

const (
	roleDispatcher role = "dispatcher"
	roleStitcher   role = "stitcher"
	roleGateway    role = "gateway"
	roleWorker     role = "worker"
)

// member is one process of the fleet.
type member struct {
	name    string
	role    role
	env     []string // on top of the fleet's common environment
	svc     *devstack.Service
	started time.Time
	// ending is set before the monkey (or the fleet's stop) ends the
	// process: its exit is then no crash.
	ending atomic.Bool
	// special marks a worker the monkey started for a fault of its own (a
	// hung engine): churn leaves it alone.
	special bool
	// drain is a worker's SPOOL_WORKER_DRAIN_TIMEOUT.
	drain time.Duration
	// metrics is where it serves Prometheus (SPOOL_METRICS_ADDR).
	metrics string
	// busy is set while a fault holds the process (a freeze): no other
	// fault picks it meanwhile.
	busy atomic.Bool
}

// Crash is a process that exited although nothing ended it. The fleet
// restarts it, as an orchestrator would.
type Crash struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
	Exit string    `json:"exit"`
	Log  string    `json:"log"`
}

// fleet runs every service of spool as its own OS process against the
// stack, supervises them, and lets the monkey end and start them.
type fleet struct {
	o       Options
	dir     string
	stack   *devstack.Stack
	nats    natsNodes
	gateway string   // http://127.0.0.1:port
	key     string   // the gateway's bootstrap admin key, which the load sends
	common  []string // every service's environment

	mu        sync.Mutex
	rng       *rand.Rand // drain timeouts; guarded by mu
	members   map[string]*member
	seq       map[role]int // names given so far, per role
	crashes   []Crash
	restarts  map[string]int // crash restarts per name
	stopping  bool
	supervise sync.WaitGroup
}

// The services' settings that differ from their defaults, and why:
// faults must be noticed in seconds for a run of minutes, as a deployment
// would notice them in its own time.
const (
	pool        = "chaos"
	poolModels  = "ref,ref-talk"
	ackWait     = 4 * time.Second        // a killed or frozen worker's task comes back after this
	stallAfter  = 15 * time.Second       // SPOOL_WORKER_STALL_TIMEOUT: longer than a dependency's outage
	stallGrace  = 5 * time.Second        // SPOOL_WORKER_STALL_GRACE
	tailWait    = 8 * time.Second        // SPOOL_WORKER_TAIL_WAIT: a killed worker's unuploaded tail
	drainShort  = 200 * time.Millisecond // a drain that hands its segment back
	drainLong   = 20 * time.Second       // a drain that lets it finish
	stitchLease = 5 * time.Second        // a killed stitcher's jobs go to the other after this
	openJobs    = 32                     // SPOOL_STITCHER_OPEN_JOBS: above the jobs a stitcher appends to at once
	maxAttempts = 10                     // a segment may be hit by several faults in a row
)

func newFleet(o Options, dir string, st *devstack.Stack, nats natsNodes) (*fleet, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	key, _, err := apikey.Mint("")
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	f := &fleet{o: o, dir: dir, stack: st, nats: nats, gateway: fmt.Sprintf("http://127.0.0.1:%d", port), key: key,
		rng: rand.New(rand.NewPCG(uint64(o.Seed), 3)), members: map[string]*member{}, seq: map[role]int{}, restarts: map[string]int{}}
	f.common = append(st.Env(),
		"SPOOL_NATS_URL="+nats.URL(),
		fmt.Sprintf("SPOOL_NATS_REPLICAS=%d", natsReplicas),
		"SPOOL_NATS_ACK_WAIT="+ackWait.String(),
		"SPOOL_LOG_LEVEL=info",
		"SPOOL_CATALOG=",
		// Both the dispatcher and the gateway know the pool.
		"SPOOL_DISPATCHER_POOLS="+pool+":"+poolModels,
		"SPOOL_GATEWAY_POOLS="+pool+":"+poolModels,
		fmt.Sprintf("SPOOL_DISPATCHER_MAX_ATTEMPTS=%d", maxAttempts),
		"SPOOL_DISPATCHER_RETRY_BACKOFF=500ms",
		"SPOOL_DISPATCHER_RECONCILE_EVERY=2s",
		"SPOOL_DISPATCHER_RUNNING_STALE=20s",
		"SPOOL_DISPATCHER_QUEUED_STALE=90s",
		"SPOOL_DISPATCHER_SEGMENT_DEADLINE=2m",
		"SPOOL_STITCHER_LEASE="+stitchLease.String(),
		"SPOOL_STITCHER_SWEEP_EVERY=2s",
		fmt.Sprintf("SPOOL_STITCHER_OPEN_JOBS=%d", openJobs),
		fmt.Sprintf("SPOOL_GATEWAY_ADDR=127.0.0.1:%d", port),
		"SPOOL_GATEWAY_ADMIN_KEY="+key, // recorded by the first gateway; every one after finds it
		"SPOOL_GATEWAY_URL_KEY="+apikey.NewSecret(),
		"SPOOL_WORKER_POOL="+pool,
		"SPOOL_WORKER_MODELS="+poolModels,
		"SPOOL_WORKER_SLOTS=1",
		"SPOOL_WORKER_HEARTBEAT=1s",
		"SPOOL_WORKER_REGISTER_EVERY=1s",
		"SPOOL_WORKER_STALL_TIMEOUT="+stallAfter.String(),
		"SPOOL_WORKER_STALL_GRACE="+stallGrace.String(),
		"SPOOL_WORKER_TAIL_WAIT="+tailWait.String(),
	)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	return f, nil
}

// start starts the services: two dispatchers, two stitchers, the gateway
// and o.Workers workers, and waits until the gateway is healthy and every
// worker alive has registered (one that crashed was replaced).
func (f *fleet) start(ctx context.Context, registered func(ctx context.Context, worker string) error) error {
	for _, r := range []role{roleDispatcher, roleDispatcher, roleStitcher, roleStitcher, roleGateway} {
		if _, err := f.startRole(r, nil); err != nil {
			return err
		}
	}
	for range f.o.Workers {
		if _, err := f.startWorker(nil, false); err != nil {
			return err
		}
	}
	if err := f.waitHealthy(ctx, 2*time.Minute); err != nil {
		return err
	}
	return poll(ctx, 2*time.Minute, 100*time.Millisecond, "every worker registered", func(ctx context.Context) error {
		ws := f.live(roleWorker, true)
		if len(ws) < f.o.Workers {
			return fmt.Errorf("%d workers alive", len(ws))
		}
		for _, w := range ws {
			if err := registered(ctx, w.name); err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
		}
		return nil
	})
}

// nextName is the next name of role r: dispatcher-1, worker-7, ...
func (f *fleet) nextName(r role) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq[r]++
	return fmt.Sprintf("%s-%d", r, f.seq[r])
}

// startRole starts a new dispatcher, stitcher or gateway under the next
// name of its role (a stitcher's id is its name).
func (f *fleet) startRole(r role, env []string) (*member, error) {
	name := f.nextName(r)
	if r == roleStitcher {
		env = append(env, "SPOOL_STITCHER_ID="+name)
	}
	return f.launch(&member{name: name, role: r, env: env})
}

// startWorker starts a worker with env added; half of them (by the seed)
// drain with a timeout shorter than a segment, half with one longer. A
// special worker is left alone by churn.
func (f *fleet) startWorker(env []string, special bool) (*member, error) {
	f.mu.Lock()
	drain := drainLong
	if f.rng.IntN(2) == 0 {
		drain = drainShort
	}
	f.mu.Unlock()
	name := f.nextName(roleWorker)
	env = append([]string{"SPOOL_WORKER_ID=" + name, "SPOOL_WORKER_DRAIN_TIMEOUT=" + drain.String()}, env...)
	return f.launch(&member{name: name, role: roleWorker, env: env, drain: drain, special: special})
}

// launch starts m's process and supervises it.
func (f *fleet) launch(m *member) (*member, error) {
	bin := filepath.Join(f.o.Bin, "spool-"+string(m.role))
	user, err := f.nats.NATSUser(bus.Role(m.role), pool, "") // each service as its own role
	if err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", m.name, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", m.name, err)
	}
	m.metrics = fmt.Sprintf("127.0.0.1:%d", port)
	access, secret, err := f.stack.S3User(string(m.role)) // and its own MinIO user
	if err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", m.name, err)
	}
	env := append(slices.Clone(f.common), "SPOOL_NATS_USER="+user.User, "SPOOL_NATS_PASSWORD="+user.Password.Reveal(),
		"SPOOL_S3_ACCESS_KEY="+access, "SPOOL_S3_SECRET_KEY="+secret, "SPOOL_METRICS_ADDR="+m.metrics)
	env = append(env, m.env...)
	svc, err := devstack.StartService(m.name, bin, nil, env, filepath.Join(f.dir, "logs", m.name+".log"))
	if err != nil {
		return nil, fmt.Errorf("chaos: start %s: %w", m.name, err)
	}
	m.svc, m.started = svc, time.Now()
	f.mu.Lock()
	f.members[m.name] = m
	stopping := f.stopping
	f.mu.Unlock()
	if stopping {
		m.ending.Store(true)
		_ = svc.Kill()
		return nil, errors.New("chaos: the fleet is stopping")
	}
	f.supervise.Add(1)
	go f.watch(m)
	return m, nil
}

// watch waits for m to exit; an exit nothing asked for is a crash, and the
// process is started again, as an orchestrator restarts a pod (a worker
// under a new name, as a new pod is).
func (f *fleet) watch(m *member) {
	defer f.supervise.Done()
	<-m.svc.Done()
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.ending.Load() || f.stopping {
		return
	}
	exit := "exit 0"
	if err := m.svc.ExitErr(); err != nil {
		exit = err.Error()
	}
	f.crashes = append(f.crashes, Crash{Name: m.name, At: time.Now(), Exit: exit, Log: m.svc.LogPath()})
	f.o.logf("%s exited by itself (%s); restarting it (log %s)", m.name, exit, m.svc.LogPath())
	f.restarts[m.name]++
	if f.restarts[m.name] > 20 {
		f.o.logf("%s crashed %d times; not restarting it", m.name, f.restarts[m.name])
		return
	}
	go func() {
		time.Sleep(time.Second) // an orchestrator's restart backoff, not a synchronisation
		var err error
		if m.role == roleWorker {
			_, err = f.startWorker(nil, false)
		} else {
			_, err = f.launch(&member{name: m.name, role: m.role, env: m.env})
		}
		if err != nil {
			f.o.logf("restarting %s: %v", m.name, err)
		}
	}()
}

// live returns the running processes of r that nothing is ending, oldest
// first; with plain, workers started for a fault of their own are left out.
func (f *fleet) live(r role, plain bool) []*member {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*member
	for _, m := range f.members {
		if m.role != r || m.ending.Load() || (plain && m.special) {
			continue
		}
		select {
		case <-m.svc.Done():
			continue
		default:
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int { return a.started.Compare(b.started) })
	return out
}

// kill ends m with SIGKILL to its process group (its ffmpeg children die
// with it) and waits until it is gone.
func (f *fleet) kill(m *member) error {
	m.ending.Store(true)
	return m.svc.Kill()
}

// signalGroup sends sig to m's whole process group: SIGSTOP freezes the
// worker and its encoders at once.
func signalGroup(m *member, sig syscall.Signal) error {
	if err := syscall.Kill(-m.svc.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("chaos: %s: %v: %w", m.name, sig, err)
	}
	return nil
}

// crashList returns the crashes so far.
func (f *fleet) crashList() []Crash {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.crashes)
}

// waitHealthy polls the gateway's /health until it answers 200.
func (f *fleet) waitHealthy(ctx context.Context, within time.Duration) error {
	return poll(ctx, within, 100*time.Millisecond, "the gateway's /health", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.gateway+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	})
}

// stop ends every process (SIGTERM: workers drain; SIGKILL after 15 s) in
// parallel and waits for the supervisors.
func (f *fleet) stop() error {
	f.mu.Lock()
	f.stopping = true
	ms := make([]*member, 0, len(f.members))
	for _, m := range f.members {
		ms = append(ms, m)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		m.ending.Store(true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := signalGroup(m, syscall.SIGCONT); err != nil { // a frozen one must hear the TERM
				errs[i] = err
			}
			if err := m.svc.Stop(syscall.SIGTERM); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	f.supervise.Wait()
	return errors.Join(errs...)
}

// logTail is the end of a member's log, for error messages.
func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(log %s: %v)", path, err)
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("chaos: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// poll calls check every interval until it returns nil, and fails with its
// last error when within passes or ctx ends.
func poll(ctx context.Context, within, interval time.Duration, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: %s: not within %v: %w", what, within, last)
		case <-time.After(interval):
		}
	}
}
