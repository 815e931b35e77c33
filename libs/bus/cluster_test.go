package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// clusterBus starts a three-node cluster and connects to it as a service
// does: SPOOL_NATS_URL holds every node's URL, comma-separated, and
// SPOOL_NATS_REPLICAS=3, read by config.Load; the topology is declared.
func clusterBus(t *testing.T) (*devstack.NATSCluster, *bus.Bus) {
	t.Helper()
	c := devstacktest.NATSCluster(t)
	admin := c.NATSConfig()
	t.Setenv("SPOOL_NATS_URL", c.URL())
	t.Setenv("SPOOL_NATS_USER", admin.User)
	t.Setenv("SPOOL_NATS_PASSWORD", admin.Password.Reveal())
	t.Setenv("SPOOL_NATS_REPLICAS", "3")
	var cfg struct {
		NATS config.NATS `envconfig:"NATS"`
	}
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.NATS.Name = t.Name()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, cfg.NATS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	return c, b
}

// SPOOL_NATS_REPLICAS=3 on a three-node cluster declares every stream and
// bucket with three replicas, one on each node (on one server Declare
// refuses it: TestConnectReplicasFromConfig).
func TestClusterDeclaresReplicasFromConfig(t *testing.T) {
	c, b := clusterBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var nodes []string
	for i := range c.Nodes() {
		nodes = append(nodes, c.Name(i))
	}
	for _, name := range []string{bus.StreamJobs, bus.StreamSegments, bus.StreamResults, bus.StreamEvents,
		"KV_" + bus.BucketWorkers, "KV_" + bus.BucketCancelled} {
		var info *jetstream.StreamInfo
		retry(ctx, t, "stream "+name+" with a leader", func(ctx context.Context) error {
			s, err := b.JetStream().Stream(ctx, name)
			if err != nil {
				return err
			}
			if info = s.CachedInfo(); info.Cluster == nil || info.Cluster.Leader == "" {
				return fmt.Errorf("no leader yet: %+v", info.Cluster)
			}
			return nil
		})
		if info.Config.Replicas != 3 || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v: want 3", name, info.Config.Replicas, info.Cluster)
		}
		on := []string{info.Cluster.Leader}
		for _, r := range info.Cluster.Replicas {
			on = append(on, r.Name)
		}
		slices.Sort(on)
		if !slices.Equal(on, nodes) {
			t.Errorf("stream %s on %v, want %v", name, on, nodes)
		}
	}
}

// A publish while no quorum of the stream's replicas runs gets no PubAck:
// the client gets an error and must retry. The message may still have been
// stored (the lone leader may have written it before losing its
// followers), so the retry carries the same Nats-Msg-Id: once a quorum is
// back, it is acknowledged, and the stream holds the job exactly once.
func TestPublishWithoutQuorumFails(t *testing.T) {
	c, b := clusterBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	submit := func(ctx context.Context, id string) (*jetstream.PubAck, error) {
		_, ack, err := b.SubmitJob(ctx, &spoolv1.JobSpec{Id: id, Prompt: "a lighthouse at dusk"})
		return ack, err
	}
	if _, err := submit(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"alone-1", "alone-2"} {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ack, err := submit(actx, id)
		cancel()
		if err == nil {
			t.Fatalf("publish %s with one node of three: PubAck %+v, want an error", id, ack)
		}
		t.Logf("publish %s without quorum: %v", id, err)
	}
	begin := time.Now()
	if err := c.Restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alone-1", "alone-2"} {
		ack, err := retrySubmit(ctx, submit, id)
		if err != nil {
			t.Fatalf("retry of %s with a quorum back: %v", id, err)
		}
		t.Logf("retry of %s acknowledged %v after the restart: seq %d, duplicate %v", id, time.Since(begin).Round(time.Millisecond), ack.Sequence, ack.Duplicate)
	}
	ids := streamIDs(ctx, t, b)
	for _, id := range []string{"before", "alone-1", "alone-2"} {
		if n := len(ids[id]); n != 1 {
			t.Errorf("job %s stored %d times (%v), want once", id, n, ids[id])
		}
	}
}

// retrySubmit calls submit with id until it returns a PubAck, each attempt
// bounded by 2 s, while ctx lasts.
func retrySubmit(ctx context.Context, submit func(context.Context, string) (*jetstream.PubAck, error), id string) (*jetstream.PubAck, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err := submit(actx, id)
		cancel()
		if err == nil {
			return ack, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// streamIDs reads every message of SPOOL_JOBS, by sequence, and returns
// the sequences holding each Nats-Msg-Id. A read that fails while leaders
// change is retried while ctx lasts.
func streamIDs(ctx context.Context, t *testing.T, b *bus.Bus) map[string][]uint64 {
	t.Helper()
	var s jetstream.Stream
	retry(ctx, t, "stream info", func(ctx context.Context) (err error) {
		s, err = b.JetStream().Stream(ctx, bus.StreamJobs)
		return err
	})
	st := s.CachedInfo().State
	ids := map[string][]uint64{}
	for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0; seq++ {
		var m *jetstream.RawStreamMsg
		retry(ctx, t, fmt.Sprintf("get message %d", seq), func(ctx context.Context) (err error) {
			m, err = s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			return err
		})
		if m != nil {
			id := m.Header.Get(jetstream.MsgIDHeader)
			ids[id] = append(ids[id], seq)
		}
	}
	return ids
}

// retry calls f, each call bounded by 2 s, until it returns nil; it fails t
// when ctx ends first.
func retry(ctx context.Context, t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeIndex returns the index of the node named name.
func nodeIndex(t *testing.T, c *devstack.NATSCluster, name string) int {
	t.Helper()
	for i := range c.Nodes() {
		if c.Name(i) == name {
			return i
		}
	}
	t.Fatalf("no node named %q", name)
	return -1
}

// streamLeader returns the index of the node leading SPOOL_JOBS.
func streamLeader(ctx context.Context, t *testing.T, c *devstack.NATSCluster, b *bus.Bus) int {
	t.Helper()
	var leader string
	retry(ctx, t, "stream leader", func(ctx context.Context) error {
		s, err := b.JetStream().Stream(ctx, bus.StreamJobs)
		if err != nil {
			return err
		}
		if cl := s.CachedInfo().Cluster; cl != nil && cl.Leader != "" {
			leader = cl.Leader
			return nil
		}
		return errors.New("no leader")
	})
	return nodeIndex(t, c, leader)
}

// killAll sends SIGKILL to every node at once.
func killAll(t *testing.T, c *devstack.NATSCluster) {
	t.Helper()
	errs := make([]error, c.Nodes())
	var wg sync.WaitGroup
	for i := range c.Nodes() {
		wg.Go(func() { errs[i] = c.Kill(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// restartAll restarts every node at once and waits until each is current.
func restartAll(ctx context.Context, t *testing.T, c *devstack.NATSCluster) {
	t.Helper()
	errs := make([]error, c.Nodes())
	var wg sync.WaitGroup
	for i := range c.Nodes() {
		wg.Go(func() { errs[i] = c.Restart(ctx, i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// names lists the nodes, for messages.
func names(c *devstack.NATSCluster) string {
	var n []string
	for i := range c.Nodes() {
		n = append(n, c.Name(i))
	}
	return strings.Join(n, ",")
}

// A service started while the cluster has no quorum (two of three nodes
// down, a leader being elected) waits in Declare for the quorum to come
// back, rather than failing its start-up.
func TestDeclareWaitsForQuorum(t *testing.T) {
	c, b := clusterBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, i := range []int{1, 2} {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- b.Declare(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Declare without quorum returned %v after %v, want it to wait", err, time.Since(begin))
	case <-time.After(3 * time.Second): // a lower bound: it must still be waiting
	}
	for _, i := range []int{1, 2} {
		if err := c.Restart(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Declare after the quorum came back: %v", err)
	}
	t.Logf("declared %v after the start, the quorum lost for the first 3 s", time.Since(begin).Round(time.Millisecond))
}
