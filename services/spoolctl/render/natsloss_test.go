package render_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/gateway/gateway"
	"github.com/spoolvideo/spool/services/spoolctl/render"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// lossSystem is the whole system over a stack of the test's own, whose
// NATS the test kills and wipes. Every service has a connection of its
// own, as separate processes would, and none is restarted: each must
// recover by itself.
type lossSystem struct {
	*system
	st    *devstack.Stack
	topo  bus.Topology
	pools string
}

// newLossSystem starts the stack and the gateway. The workers register
// every 100 ms under a 2 s TTL, so that the reconciler trusts the registry
// 2 s after the streams are created again; its stale bounds are an hour,
// so that only the loss of the store re-drives anything.
func newLossSystem(t *testing.T) *lossSystem {
	t.Helper()
	st := devstacktest.Private(t, devstacktest.NATS, devstacktest.Postgres, devstacktest.MinIO)
	ctx := context.Background()
	topo, err := bus.NewTopology(bus.WithWorkerTTL(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ls := &lossSystem{st: st, topo: topo, pools: jobspec.Pools{{Name: pool, Models: systest.PoolModels}}.String()}
	c := devstacktest.ConnectTo(t, st, 0)
	c.Bus = ls.connect(t) // the gateway's, declaring with the services' topology
	if err := c.Bus.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Pools: ls.pools, MaxBody: 1 << 20, URLKey: config.Secret(devstacktest.URLKey())}, c.Bus, c.Store, c.Blob, quiet())
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(g.Handler())
	t.Cleanup(api.Close)
	ls.system = &system{&systest.System{Clients: c, API: api, Key: devstacktest.AdminKey(t, c.Store)}}
	return ls
}

// connect is a connection of one service.
func (ls *lossSystem) connect(t *testing.T) *bus.Bus {
	t.Helper()
	b, err := bus.Connect(context.Background(), ls.st.NATSConfig(), bus.WithTopology(ls.topo), bus.WithReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// startServices starts a dispatcher, a stitcher and a worker with two ref
// slots, each on its own connection, until the test ends.
func (ls *lossSystem) startServices(t *testing.T) {
	t.Helper()
	ls.startControl(t)
	ls.startWorker(t)
}

// startControl starts a dispatcher and a stitcher, each on its own
// connection, until the test ends.
func (ls *lossSystem) startControl(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	d, err := dispatcher.New(ctx, dispatcher.Config{Pools: ls.pools, MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond,
		ReconcileEvery: 300 * time.Millisecond, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 16, LiveAhead: 2,
		OutboxBatch: 64, SubmitBatch: 16, SegmentDeadline: 5 * time.Minute, RedriveAfter: time.Second}, ls.connect(t), ls.Store, quiet(),
		dispatcher.WithBlob(ls.Blob))
	if err != nil {
		t.Fatal(err)
	}
	sti, err := stitcher.New(stitcher.Config{ID: "loss", PartSize: blob.MinPartSize, OpenJobs: 4, Parallel: 4, Lease: 5 * time.Second,
		LiveWindow: 3, Codec: "h264", Sweep: time.Second}, ls.connect(t), ls.Store, ls.Blob, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ls.Run(t, d.Run)
	ls.Run(t, sti.Run)
}

// startWorker starts a worker with two ref slots, on its own connection,
// until the test ends.
func (ls *lossSystem) startWorker(t *testing.T) {
	t.Helper()
	wk, err := worker.New(worker.Config{ID: "loss", Pool: pool, Models: systest.PoolModels, Slots: 2, Heartbeat: time.Second,
		Register: 100 * time.Millisecond}, ls.connect(t), ls.Blob, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wk.Close)
	ls.Run(t, wk.Run)
}

// waitQueued waits until the first attempt of job's segment 0 is
// dispatched (its task published or about to be, in outbox order).
func (ls *lossSystem) waitQueued(t *testing.T, job string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if atts, _ := ls.Store.ListAttempts(context.Background(), job, 0); len(atts) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: its first segment was never dispatched", job)
		}
	}
}

// loseNATS kills NATS, removes its JetStream store and starts it again,
// empty, on the same address: every stream, consumer, bucket and message
// is gone.
func (ls *lossSystem) loseNATS(t *testing.T) {
	t.Helper()
	if err := ls.st.Kill(devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	if err := ls.st.Wipe(devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	if err := ls.st.Restart(context.Background(), devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
}

// TestAcceptedJobSurvivesNATSStoreLoss: POST /generate answers 202; NATS
// then loses its whole store before any dispatcher ran, so the submission's
// message is gone. A dispatcher, a worker and a stitcher started after
// re-drive it from Postgres, and the video decodes to the oracle's frames.
func TestAcceptedJobSurvivesNATSStoreLoss(t *testing.T) {
	ls := newLossSystem(t)
	spec := `{"id":"lost-before-dispatch","prompt":"a lighthouse at dusk","durationFrames":40,"windowFrames":13,"overlapFrames":4,` +
		`"width":96,"height":64,"steps":3,"seed":7,"fps":24,"pool":"` + pool + `"}`
	post(t, ls.System, "/generate", spec)
	if _, err := ls.Store.GetSubmission(context.Background(), "lost-before-dispatch"); err != nil {
		t.Fatalf("after the 202: %v", err)
	}
	ls.loseNATS(t)
	ls.startServices(t)
	ls.compareWith(t, "lost-before-dispatch", spec, 40, render.Options{}, 3*time.Minute)
}

// TestNATSStoreLostMidJob: a chain job and an independent one run; once
// each has a segment committed and others queued or running, NATS loses
// its whole store (tasks, results, consumers, the workers' registry, all
// gone). No service is restarted. Both jobs succeed, decode to the
// oracle's frames, and each segment has exactly one committed attempt.
func TestNATSStoreLostMidJob(t *testing.T) {
	ls := newLossSystem(t)
	ls.startControl(t)
	ctx := context.Background()
	// 8 segments in the chain, 16 in the independent job. The worker
	// starts once both jobs' first tasks are queued, the chain's first:
	// its two slots take the first segment of each, and the chain's next
	// task queues behind the independent job's, so that the loss lands
	// with segments committed and segments in flight in both jobs
	// however fast the segments run.
	spec := func(id, mode string, frames int) string {
		return `{"id":"` + id + `","prompt":"a storm over the sea","mode":"` + mode + `","durationFrames":` + fmt.Sprint(frames) +
			`,"windowFrames":25,"overlapFrames":5,"width":960,"height":544,"steps":60,"seed":3,"fps":24,"pool":"` + pool + `"}`
	}
	frames := map[string]int{"lost-mid-chain": 165, "lost-mid-indep": 325}
	jobs := map[string]string{"lost-mid-chain": spec("lost-mid-chain", "MODE_CHAIN", 165),
		"lost-mid-indep": spec("lost-mid-indep", "MODE_INDEPENDENT", 325)}
	for _, id := range []string{"lost-mid-chain", "lost-mid-indep"} {
		post(t, ls.System, "/generate", jobs[id])
		ls.waitQueued(t, id)
	}
	ls.startWorker(t)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ready := 0
		for id := range jobs {
			j, err := ls.Store.GetJob(ctx, id)
			if err == nil && j.SegmentsTotal > 0 && j.SegmentsDone >= j.SegmentsTotal {
				t.Fatalf("job %s finished before NATS could lose its store: make its segments longer", id)
			}
			if err == nil && j.SegmentsDone >= 1 {
				ready++
			}
		}
		if ready == len(jobs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no segment committed in both jobs")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for id := range jobs {
		j, _ := ls.Store.GetJob(ctx, id)
		t.Logf("job %s: %d of %d segments done when NATS lost its store", id, j.SegmentsDone, j.SegmentsTotal)
	}
	ls.loseNATS(t)
	for id, s := range jobs {
		ls.compareWith(t, id, s, frames[id], render.Options{}, 5*time.Minute)
		segs, err := ls.Store.ListSegments(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range segs {
			atts, err := ls.Store.ListAttempts(ctx, id, sg.Index)
			if err != nil {
				t.Fatal(err)
			}
			done, outcomes := 0, ""
			for _, a := range atts {
				outcomes += fmt.Sprintf(" %d:%s%s", a.Attempt, a.Outcome, map[bool]string{true: "(" + a.ErrorClass + ")"}[a.ErrorClass != ""])
				if a.Outcome == store.OutcomeDone {
					done++
					if a.Attempt != sg.CommittedAttempt {
						t.Errorf("job %s segment %d: attempt %d done, %d committed", id, sg.Index, a.Attempt, sg.CommittedAttempt)
					}
				}
			}
			if done != 1 || sg.State != store.SegDone {
				t.Errorf("job %s segment %d (%s): %d committed attempts:%s", id, sg.Index, sg.State, done, outcomes)
			}
			if len(atts) > 1 {
				t.Logf("job %s segment %d:%s", id, sg.Index, outcomes)
			}
		}
	}
}
