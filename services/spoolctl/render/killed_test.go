package render_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
)

// TestKilledWorkerEqualsOracle: three spool-worker processes run a chain
// job; the one running segment 1 is killed with SIGKILL. The segment is
// redone by another process after AckWait, and the video still decodes to
// exactly the oracle's frames.
func TestKilledWorkerEqualsOracle(t *testing.T) {
	const ackWait = 3 * time.Second
	sys := newSystem(t, ackWait, 0)
	bin := devstacktest.Binary(t, "../../worker/cmd/spool-worker")
	procs := map[string]*exec.Cmd{}
	for i := range 3 {
		id := fmt.Sprintf("kw%d", i)
		procs[id] = startWorkerProcess(t, bin, id, append(devstacktest.ServiceEnv(t, sys.Stack, bus.RoleWorker, pool, id), "SPOOL_WORKER_ID="+id, "SPOOL_WORKER_POOL="+pool,
			"SPOOL_WORKER_BACKEND=ref", "SPOOL_WORKER_HEARTBEAT=500ms", "SPOOL_WORKER_REGISTER_EVERY=100ms",
			"SPOOL_NATS_ACK_WAIT="+ackWait.String(), "SPOOL_LOG_LEVEL=warn")...)
	}
	spec := `{"id":"oracle-killed","prompt":"a storm over the sea","durationFrames":60,"windowFrames":25,"overlapFrames":5,` +
		`"width":960,"height":544,"steps":200,"seed":11,"fps":24,"pool":"` + pool + `"}`
	// At 960×544 a ref segment takes about a second on this class of
	// machine: long enough for the kill, below, to land mid-segment.
	sys.submit(t, spec)
	// Find the process holding segment 1 and kill it mid-segment.
	kv, err := sys.Bus.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	deadline := time.Now().Add(60 * time.Second)
	for victim == "" && time.Now().Before(deadline) {
		for id := range procs {
			e, err := kv.Get(context.Background(), pool+"."+id)
			if err != nil {
				continue
			}
			info, err := bus.DecodeWorkerInfo(e.Value())
			if err == nil && slices.ContainsFunc(info.CurrentTasks, func(k string) bool { return strings.HasPrefix(k, "oracle-killed/1/") }) {
				victim = id
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if victim == "" {
		t.Fatal("no process took segment 1")
	}
	_ = procs[victim].Process.Signal(syscall.SIGKILL)
	sys.compare(t, "oracle-killed", spec, 60)
	a, err := sys.Store.ListAttempts(context.Background(), "oracle-killed", 1)
	if err != nil || len(a) != 2 || a[0].Outcome != store.OutcomeAbandoned || a[1].Outcome != store.OutcomeDone ||
		strings.HasPrefix(a[1].Worker.WorkerID, victim) {
		t.Fatalf("segment 1 lineage %+v (%v), victim %s", a, err, victim)
	}
}
