package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterReadyTimeout bounds the wait for a cluster to form at start, and
// for a restarted node to rejoin and catch up.
const clusterReadyTimeout = 90 * time.Second

// ClusterOptions says where and how to run a NATSCluster.
type ClusterOptions struct {
	// Dir is the parent directory of the nodes' data and logs: Dir/n1,
	// Dir/n2, ... each hold the node's config file (nats.conf), its log
	// (nats.log) and its JetStream store (store/). Empty means a new
	// temporary directory, removed on Stop; a given Dir is kept, and the
	// stores found in it are reused.
	Dir string
	// Nodes is the number of servers; 0 means 3.
	Nodes int
	// Build allows installing nats-server at NATSServerVersion with
	// "go install" into the tool cache when it is missing (about a minute
	// the first time). Off: a missing binary is an error matching
	// ErrMissingBinary that says how to install it ("make tools").
	Build bool
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
}

// NATSCluster is a cluster of real nats-server processes (the binary of
// NATSServerVersion), each with JetStream storing in its own directory with
// sync_interval: always (every write is fsynced before it is acknowledged),
// a client port, a cluster port with routes to every other node, and an
// HTTP monitoring port, all on 127.0.0.1. Its nodes are numbered from 0 and
// named n1, n2, ...; a node keeps its ports and store across Kill, StopNode
// and Restart, so its URLs never change. Its methods are safe for
// concurrent use (a chaos monkey may kill one node while another restarts).
type NATSCluster struct {
	bin   string
	dir   string
	temp  bool // dir is ours, removed on Stop
	log   *slog.Logger
	nodes []*clusterNode
	auth  *natsAuth // its users, in every node's config

	mu      sync.Mutex // guards each node's proc, and stopped
	stopped bool
}

// StartNATSCluster starts o.Nodes nats-server processes forming one cluster
// and waits until every node is up, routed to every other, has JetStream
// enabled (its /healthz?js-enabled-only=true is ok) and knows the elected
// JetStream meta leader, and the cluster takes a stream with one replica on
// each node (a probe stream, created and deleted). It fails, stopping what
// it started, when the binary is missing (an error matching
// ErrMissingBinary) or the cluster does not form within 90 s or before ctx
// ends.
func StartNATSCluster(ctx context.Context, o ClusterOptions) (*NATSCluster, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := o.Nodes
	if n == 0 {
		n = 3
	}
	if n < 1 {
		return nil, fmt.Errorf("devstack: nats cluster: %d nodes: want at least 1", n)
	}
	dir, temp, err := dataDir(o.Dir, "spool-nats-cluster-")
	if err != nil {
		return nil, fmt.Errorf("devstack: nats cluster: %w", err)
	}
	auth, err := newNATSAuth()
	if err != nil {
		return nil, fmt.Errorf("devstack: nats cluster: %w", err)
	}
	c := &NATSCluster{log: log, dir: dir, temp: temp, auth: auth}
	start := time.Now()
	if err := c.start(ctx, o.Build, n); err != nil {
		return nil, errors.Join(fmt.Errorf("devstack: nats cluster: %w", err), c.Stop())
	}
	log.Info("nats cluster ready", "nodes", n, "url", c.URL(), "dir", c.dir, "took", time.Since(start).Round(time.Millisecond))
	return c, nil
}

// start finds (or builds) the binary, writes every node's config, starts
// the nodes and waits for the cluster.
func (c *NATSCluster) start(ctx context.Context, build bool, n int) error {
	f := newFinder()
	bin, err := f.natsServer()
	if errors.Is(err, ErrMissingBinary) && build {
		bin, err = buildNATSServer(ctx, f, err, filepath.Join(c.dir, "nats-server-build.log"), c.log)
	}
	if err != nil {
		return err
	}
	c.bin = bin
	ports, err := freePorts(3 * n)
	if err != nil {
		return err
	}
	for i := range n {
		c.nodes = append(c.nodes, &clusterNode{
			name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(c.dir, fmt.Sprintf("n%d", i+1)),
			client: ports[3*i], route: ports[3*i+1], monitor: ports[3*i+2],
		})
	}
	if err := c.writeConfigs(); err != nil {
		return err
	}
	c.mu.Lock()
	for _, nd := range c.nodes {
		if err = nd.start(c.bin); err != nil {
			break
		}
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, clusterReadyTimeout)
	defer cancel()
	for i, nd := range c.nodes {
		if err := waitFor(ctx, nd.name, clusterReadyTimeout, c.proc(i), func(ctx context.Context) error {
			return nd.formed(ctx, c.names(), metaLeaderKnown)
		}); err != nil {
			return err
		}
	}
	return c.probe(ctx)
}

// probeStream is the stream whose creation shows that the cluster takes
// JetStream requests; it is deleted at once.
const probeStream = "DEVSTACK_PROBE"

// probe creates a stream with one replica per node, then deletes it,
// retrying until both succeed. A meta leader that every node names may not
// yet take requests (one sent in the first moments of its leadership gets
// no answer), nor have heard from every peer (placement then fails with
// "peer offline"); the probe waits both out.
func (c *NATSCluster) probe(ctx context.Context) error {
	admin := c.NATSConfig()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.UserInfo(admin.User, admin.Password.Reveal()))
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	return waitFor(ctx, "jetstream placement of "+strconv.Itoa(len(c.nodes))+" replicas", clusterReadyTimeout, nil, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: probeStream, Subjects: []string{"devstack.probe"}, Storage: jetstream.MemoryStorage, Replicas: len(c.nodes),
		})
		if err != nil {
			return err
		}
		return js.DeleteStream(ctx, probeStream)
	})
}

// URL returns every node's client URL, comma-separated
// ("nats://127.0.0.1:p1,nats://127.0.0.1:p2,..."): the value SPOOL_NATS_URL
// takes, with which a client fails over to any live node.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.NodeURL(i)
	}
	return strings.Join(urls, ",")
}

// NodeURL returns node i's (0-based) client URL, nats://127.0.0.1:port. It
// panics when i is out of range, as every method taking a node does.
func (c *NATSCluster) NodeURL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[i].client)
}

// MonitorURL returns the base URL of node i's HTTP monitoring,
// http://127.0.0.1:port (/healthz, /varz, /jsz, /routez, ...).
func (c *NATSCluster) MonitorURL(i int) string { return c.nodes[i].monitorURL() }

// Name returns node i's server name, n<i+1>: how the server names itself in
// JetStream cluster info (stream leaders and replicas, the meta leader).
func (c *NATSCluster) Name(i int) string { return c.nodes[i].name }

// Nodes returns the number of nodes.
func (c *NATSCluster) Nodes() int { return len(c.nodes) }

// Running reports whether node i's process runs (it may still be joining).
func (c *NATSCluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].proc != nil
}

// Kill sends SIGKILL to node i, as a crash or a power cut would, and waits
// until its process is gone. Its ports and store stay, for Restart. What
// it acknowledged is on its disk: the nodes run with sync_interval: always.
// A node that is not running gives an error matching ErrNotRunning.
func (c *NATSCluster) Kill(i int) error {
	return c.end(i, true)
}

// StopNode stops node i cleanly with SIGTERM (the server shuts down:
// clients are disconnected, its stores flushed and closed) and waits until
// it has exited, killing it after 15 s. Its ports and store stay, for
// Restart. A node that is not running gives an error matching ErrNotRunning.
func (c *NATSCluster) StopNode(i int) error {
	return c.end(i, false)
}

func (c *NATSCluster) end(i int, kill bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return ErrStopped
	}
	nd := c.nodes[i]
	if nd.proc == nil {
		return fmt.Errorf("%w: nats node %s is not running", ErrNotRunning, nd.name)
	}
	var err error
	if kill {
		err = nd.proc.kill()
	} else {
		err = nd.proc.stop(syscall.SIGTERM)
	}
	nd.proc = nil
	if err != nil {
		return fmt.Errorf("devstack: nats node %s: %w", nd.name, err)
	}
	return nil
}

// Restart starts node i again after Kill or StopNode, on the same ports and
// store, and waits until it is routed to every other running node and, when
// the running nodes are a majority, its full /healthz is ok: it knows the
// meta leader and every stream and consumer it holds a replica of has caught
// up (after Wipe, from the others). Without a majority no leader can exist,
// and it waits only for JetStream to be enabled. It fails after 90 s, when
// ctx ends, or when the node exits; a running node gives an error matching
// ErrNotRunning.
func (c *NATSCluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return ErrStopped
	}
	nd := c.nodes[i]
	if nd.proc != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: nats node %s is running; stop it first", ErrNotRunning, nd.name)
	}
	err := nd.start(c.bin)
	p := nd.proc
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("devstack: restart: %w", err)
	}
	start := time.Now()
	err = waitFor(ctx, nd.name, clusterReadyTimeout, p, func(ctx context.Context) error {
		running, want := c.names(), jsEnabled
		if 2*len(running) > len(c.nodes) {
			want = jsCurrent
		}
		return nd.formed(ctx, running, want)
	})
	if err != nil {
		return fmt.Errorf("devstack: restart: %w", err)
	}
	c.log.Info("nats node back", "node", nd.name, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Wipe removes the JetStream store of stopped node i, as the loss of its
// disk would: on Restart it comes back empty and catches up from the other
// nodes. A running node gives an error matching ErrNotRunning.
func (c *NATSCluster) Wipe(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return ErrStopped
	}
	nd := c.nodes[i]
	if nd.proc != nil {
		return fmt.Errorf("%w: nats node %s is running; stop it first", ErrNotRunning, nd.name)
	}
	if err := os.RemoveAll(nd.store()); err != nil {
		return fmt.Errorf("devstack: wipe nats node %s: %w", nd.name, err)
	}
	return nil
}

// Stop stops every running node with SIGTERM, in parallel, and removes Dir
// when it was temporary. Later calls return nil; other methods ErrStopped.
func (c *NATSCluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, nd := range c.nodes {
		if nd.proc == nil {
			continue
		}
		wg.Go(func() { errs[i] = nd.proc.stop(syscall.SIGTERM) })
	}
	wg.Wait()
	for _, nd := range c.nodes {
		nd.proc = nil
	}
	if c.temp {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("devstack: stop nats cluster: %w", err)
	}
	return nil
}

// proc returns node i's process, nil when it is not running.
func (c *NATSCluster) proc(i int) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].proc
}

// names returns the names of the running nodes.
func (c *NATSCluster) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, nd := range c.nodes {
		if nd.proc != nil {
			names = append(names, nd.name)
		}
	}
	return names
}
