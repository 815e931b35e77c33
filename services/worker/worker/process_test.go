package worker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// process is a spool-worker process.
type process struct {
	id  string
	cmd *exec.Cmd
	log *os.File
}

// startProcess runs a spool-worker process with one ref slot against the
// test's stack; it is killed at cleanup if still running.
func (e *env) startProcess(t *testing.T, id string, extra ...string) *process {
	t.Helper()
	cmd := exec.Command(devstacktest.Binary(t, "../cmd/spool-worker"))
	cmd.Env = append(append(os.Environ(), devstacktest.ServiceEnv(t, e.st, bus.RoleWorker, e.pool, id)...), "SPOOL_WORKER_ID="+id, "SPOOL_WORKER_POOL="+e.pool,
		"SPOOL_WORKER_BACKEND=ref", "SPOOL_WORKER_HEARTBEAT=500ms", "SPOOL_WORKER_REGISTER_EVERY=200ms",
		"SPOOL_NATS_ACK_WAIT="+ackWait.String(), "SPOOL_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, extra...)
	log, err := os.Create(filepath.Join(t.TempDir(), id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{id: id, cmd: cmd, log: log}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("%s log:\n%s", id, out)
		}
	})
	return p
}

// heldBy polls the registry until one of the processes holds a task of
// job's segment idx, and returns it.
func (e *env) heldBy(t *testing.T, job string, idx int, ps ...*process) *process {
	t.Helper()
	kv, err := e.bus.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%s/%d/", job, idx)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range ps {
			ent, err := kv.Get(context.Background(), e.pool+"."+p.id)
			if err != nil {
				continue
			}
			var info spoolv1.WorkerInfo
			if proto.Unmarshal(ent.Value(), &info) == nil && slices.ContainsFunc(info.CurrentTasks, func(k string) bool {
				return strings.HasPrefix(k, prefix)
			}) {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no process took segment %d of %s", idx, job)
	return nil
}

// TestTwoProcessesChainJob: two spool-worker processes share a
// three-segment chain job; the fragments decode with exact frame counts.
func TestTwoProcessesChainJob(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	a, b := e.startProcess(t, "pa-"+e.pool[:8]), e.startProcess(t, "pb-"+e.pool[:8])
	id := e.submit(t, `{"id":"two-proc","prompt":"a harbour at night","durationFrames":30,"windowFrames":13,"overlapFrames":4,`+
		`"width":96,"height":64,"steps":3,"fps":24,"pool":"`+e.pool+`"}`)
	segs := e.waitDone(t, id)
	if len(segs) != 3 {
		t.Fatalf("%d segments", len(segs))
	}
	e.checkFragments(t, segs, 30)
	for _, s := range segs {
		at, _ := e.store.ListAttempts(context.Background(), id, s.Index)
		if len(at) != 1 || (!strings.HasPrefix(at[0].Worker.WorkerID, a.id) && !strings.HasPrefix(at[0].Worker.WorkerID, b.id)) {
			t.Fatalf("segment %d attempts %+v", s.Index, at)
		}
	}
}

// TestKilledProcessSegmentIsRedone: the process running segment 1 of a
// chain is killed with SIGKILL mid-segment. After AckWait the other process
// gets the task back, reports the attempt abandoned and runs the next
// attempt: lineage shows two attempts, the second committed, and the video
// is whole.
func TestKilledProcessSegmentIsRedone(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	// The sim backend sleeps 10 ms a step: 200 steps hold each segment for
	// 2 s however fast or loaded the machine, so the kill lands mid-segment
	// (the ref backend's time varies with the CPU).
	slow := []string{"SPOOL_WORKER_BACKEND=sim", "SPOOL_WORKER_BACKEND_PARAMS=step_ms=10"}
	a, b := e.startProcess(t, "ka-"+e.pool[:8], slow...), e.startProcess(t, "kb-"+e.pool[:8], slow...)
	id := e.submit(t, `{"id":"killed","prompt":"a storm over the sea","model":"sim","durationFrames":60,"windowFrames":25,"overlapFrames":5,`+
		`"width":320,"height":192,"steps":200,"fps":24,"pool":"`+e.pool+`"}`)
	victim := e.heldBy(t, id, 1, a, b)
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	killedAt := time.Now()
	segs := e.waitDone(t, id)
	e.checkFragments(t, segs, 60)
	at, err := e.store.ListAttempts(context.Background(), id, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(at) != 2 || at[0].Outcome != store.OutcomeAbandoned || at[1].Outcome != store.OutcomeDone || segs[1].CommittedAttempt != 2 {
		t.Fatalf("segment 1 lineage %+v (committed attempt %d)", at, segs[1].CommittedAttempt)
	}
	survivor := a
	if victim == a {
		survivor = b
	}
	if !strings.HasPrefix(at[1].Worker.WorkerID, survivor.id) {
		t.Fatalf("attempt 2 ran on %s, want the surviving process %s", at[1].Worker.WorkerID, survivor.id)
	}
	t.Logf("segment redone %v after the kill", time.Since(killedAt).Round(time.Millisecond))
}
