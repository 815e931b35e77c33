package bus_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// The PubAck guarantee. On a cluster of three nodes running with
// sync_interval: always, where libs/bus declares SPOOL_JOBS with three
// replicas (SPOOL_NATS_REPLICAS=3), a job whose PubAck the publisher got on
// spool.jobs.submit was on the disks of a quorum (two of three) before the
// PubAck left. It is therefore still in the stream, at the sequence its
// PubAck gave, and exactly once (a retry with the same Nats-Msg-Id is a
// duplicate), after:
//
//	(a) SIGKILL of any one node, the stream's leader included
//	    (TestPubAckSurvivesKillOfAnyNode);
//	(b) SIGKILL of all three nodes at once, and their restart
//	    (TestPubAckSurvivesKillOfEveryNode);
//	(c) the loss of any one node's store, which catches up from the others
//	    when the node returns (TestPubAckSurvivesWipeOfAnyNode).
//
// It does not survive the loss of two nodes' stores (a quorum's disks); and
// while no quorum runs there is no PubAck: the publish fails and the
// publisher must retry (TestPublishWithoutQuorumFails).
//
// Each test publishes jobs from publishers in parallel, each job retried
// with its id until it is acknowledged, while the faults strike, and stops
// once the faults are over and at least jobsPerTest jobs are acknowledged.

// jobsPerTest is the least number of jobs each guarantee test publishes.
const jobsPerTest = 1000

// submitter publishes jobs job-00000.. on spool.jobs.submit from several
// goroutines, one job each at a time, at most one job begun per
// submitPace, until stopped; it retries each job (same id, so same
// Nats-Msg-Id) until it gets a PubAck, and records the PubAcks. The
// publishing goes on, a few jobs always in flight, while faults strike.
type submitter struct {
	b      *bus.Bus
	mu     sync.Mutex
	acked  map[string]uint64 // job id → the stream sequence of its PubAck
	n      atomic.Int64      // len(acked)
	failed atomic.Int64      // attempts that got an error, not a PubAck
	dups   atomic.Int64      // PubAcks marked duplicate (a retry of a stored job)
	stop   chan struct{}     // closed to stop beginning jobs
	done   chan struct{}     // closed once every job begun is acknowledged
	err    error             // valid once done is closed
}

// The publishing's pace: at most one job begun per submitPace, by
// submitWorkers publishers.
const (
	submitPace    = 4 * time.Millisecond
	submitWorkers = 8
)

// submit starts publishing jobs.
func submit(ctx context.Context, b *bus.Bus) *submitter {
	s := &submitter{b: b, acked: map[string]uint64{}, stop: make(chan struct{}), done: make(chan struct{})}
	ids := make(chan string) // unbuffered: a job sent is a job begun
	go func() {
		defer close(ids)
		tick := time.NewTicker(submitPace)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case ids <- fmt.Sprintf("job-%05d", i):
			}
		}
	}()
	var wg sync.WaitGroup
	var once sync.Once
	for range submitWorkers {
		wg.Go(func() {
			for id := range ids {
				if err := s.one(ctx, id); err != nil {
					once.Do(func() { s.err = err })
				}
			}
		})
	}
	go func() { wg.Wait(); close(s.done) }()
	return s
}

// one publishes job id until it is acknowledged or ctx ends.
func (s *submitter) one(ctx context.Context, id string) error {
	spec := &spoolv1.JobSpec{Id: id, Prompt: "a lighthouse at dusk", DurationS: 4}
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, ack, err := s.b.SubmitJob(actx, spec)
		cancel()
		if err == nil {
			s.mu.Lock()
			s.acked[id] = ack.Sequence
			s.mu.Unlock()
			s.n.Add(1)
			if ack.Duplicate {
				s.dups.Add(1)
			}
			return nil
		}
		s.failed.Add(1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("job %s: %w (last: %w)", id, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitAcked waits until k jobs are acknowledged.
func (s *submitter) waitAcked(t *testing.T, k int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for s.n.Load() < k {
		select {
		case <-s.done:
			if s.err != nil {
				t.Fatal(s.err)
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs acknowledged after a minute, want %d", s.n.Load(), k)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wait waits until at least jobsPerTest jobs are acknowledged, stops
// beginning new ones, and waits until every job begun is acknowledged.
func (s *submitter) wait(t *testing.T) {
	t.Helper()
	s.waitAcked(t, jobsPerTest)
	close(s.stop)
	<-s.done
	if s.err != nil {
		t.Fatal(s.err)
	}
	t.Logf("%d jobs acknowledged (%d as duplicates of a stored first attempt); %d attempts failed and were retried",
		s.n.Load(), s.dups.Load(), s.failed.Load())
}

// checkAcknowledged checks that every acknowledged job is in SPOOL_JOBS at
// the sequence of its PubAck, that no job is there twice, and that every
// node's own replica holds as many messages as the stream.
func (s *submitter) checkAcknowledged(ctx context.Context, t *testing.T, c *devstack.NATSCluster) {
	t.Helper()
	ids := streamIDs(ctx, t, s.b)
	total := 0
	for id, seqs := range ids {
		total += len(seqs)
		if len(seqs) > 1 {
			t.Errorf("job %s stored %d times, at %v", id, len(seqs), seqs)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lost := 0
	for id, seq := range s.acked {
		seqs := ids[id]
		switch {
		case len(seqs) == 0:
			lost++
			t.Errorf("acknowledged job %s (seq %d) lost", id, seq)
		case seqs[0] != seq:
			t.Errorf("acknowledged job %s at seq %d, its PubAck said %d", id, seqs[0], seq)
		}
	}
	if len(s.acked) < jobsPerTest || lost > 0 || total != len(ids) {
		t.Fatalf("%d jobs acknowledged, %d of them lost; the stream holds %d messages of %d jobs", len(s.acked), lost, total, len(ids))
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range c.Nodes() {
		for {
			st, ok := devstacktest.LocalStream(t, c, i, bus.StreamJobs)
			if ok && st.Msgs == uint64(total) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s holds %d messages of %s (present %v), the stream %d", c.Name(i), st.Msgs, bus.StreamJobs, ok, total)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("all %d acknowledged jobs in %s at their PubAck's sequence, once each, on every node (%s)", len(s.acked), bus.StreamJobs, names(c))
}

// restartTimed restarts node i and logs how long it took to be current.
func restartTimed(ctx context.Context, t *testing.T, c *devstack.NATSCluster, i int, what string) {
	t.Helper()
	begin := time.Now()
	if err := c.Restart(ctx, i); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s back and current in %v", what, c.Name(i), time.Since(begin).Round(time.Millisecond))
}

// strike waits until at jobs are acknowledged, runs fault, and logs what it
// did (its answer), how long until the publishing went on (10 more jobs
// acknowledged) and how many publish attempts failed meanwhile.
func (s *submitter) strike(t *testing.T, at int64, fault func() string) {
	t.Helper()
	s.waitAcked(t, at)
	before, failed := s.n.Load(), s.failed.Load()
	begin := time.Now()
	what := fault()
	s.waitAcked(t, before+10)
	t.Logf("%s at %d acknowledged: 10 more acknowledged %v later; %d publish attempts failed meanwhile",
		what, before, time.Since(begin).Round(time.Millisecond), s.failed.Load()-failed)
}

// publishThrough starts a cluster and publishes jobs on it while faults
// strikes, then checks every acknowledged job (checkAcknowledged).
func publishThrough(t *testing.T, faults func(ctx context.Context, c *devstack.NATSCluster, b *bus.Bus, s *submitter)) {
	t.Helper()
	c, b := clusterBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := submit(ctx, b)
	faults(ctx, c, b, s)
	s.wait(t)
	s.checkAcknowledged(ctx, t, c)
}

// (a) SIGKILL of one node at a time while jobs are published: first the
// stream's leader, then a follower, then the meta leader, then the node the
// publisher is connected to (it reconnects to another); each comes back
// while the publishing goes on.
func TestPubAckSurvivesKillOfAnyNode(t *testing.T) {
	publishThrough(t, func(ctx context.Context, c *devstack.NATSCluster, b *bus.Bus, s *submitter) {
		for _, st := range []struct {
			at   int64
			what string
			node func() int
		}{
			{200, "stream leader", func() int { return streamLeader(ctx, t, c, b) }},
			{450, "stream follower", func() int { return (streamLeader(ctx, t, c, b) + 1) % c.Nodes() }},
			{700, "meta leader", func() int { return metaLeader(t, c) }},
			{900, "publisher's node", func() int { return nodeIndex(t, c, b.Conn().ConnectedServerName()) }},
		} {
			i := -1
			s.strike(t, st.at, func() string {
				i = st.node()
				if err := c.Kill(i); err != nil {
					t.Fatal(err)
				}
				return "killed the " + st.what + " " + c.Name(i)
			})
			restartTimed(ctx, t, c, i, "the killed "+st.what)
		}
	})
}

// (b) SIGKILL of all three nodes at once while jobs are published, twice;
// they come back on their disks, and the publishing goes on.
func TestPubAckSurvivesKillOfEveryNode(t *testing.T) {
	publishThrough(t, func(ctx context.Context, c *devstack.NATSCluster, _ *bus.Bus, s *submitter) {
		for _, at := range []int64{300, 650} {
			s.strike(t, at, func() string {
				killAll(t, c)
				begin := time.Now()
				restartAll(ctx, t, c)
				return fmt.Sprintf("killed every node (all back and current in %v)", time.Since(begin).Round(time.Millisecond))
			})
		}
	})
}

// (c) Each node in turn is killed and its store wiped while jobs are
// published; it comes back empty and catches up from the other two while
// the publishing goes on. At the end no node has the disk it started with.
func TestPubAckSurvivesWipeOfAnyNode(t *testing.T) {
	publishThrough(t, func(ctx context.Context, c *devstack.NATSCluster, _ *bus.Bus, s *submitter) {
		for i, at := range []int64{200, 450, 700} {
			s.strike(t, at, func() string {
				if err := c.Kill(i); err != nil {
					t.Fatal(err)
				}
				if err := c.Wipe(i); err != nil {
					t.Fatal(err)
				}
				return "killed and wiped " + c.Name(i)
			})
			restartTimed(ctx, t, c, i, "the wiped")
		}
	})
}

// metaLeader returns the index of the JetStream meta leader, as node 0..
// reports it (the first running node that knows one).
func metaLeader(t *testing.T, c *devstack.NATSCluster) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for i := range c.Nodes() {
			if !c.Running(i) {
				continue
			}
			if name := devstacktest.MetaLeader(t, c, i); name != "" {
				return nodeIndex(t, c, name)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no meta leader")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
