package worker_test

import (
	"testing"
	"time"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestRegistryFollowsTheTasks: with no periodic refresh due for an hour,
// the worker's entry still shows the segment it runs soon after it starts,
// and drops it soon after it ends: clients (spoolctl --watch, the gateway's
// /models/info, the reconciler) see which worker runs which segment now.
func TestRegistryFollowsTheTasks(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	id := "reg-" + e.pool[:6]
	stop := e.stoppable(t, worker.Config{ID: id, Pool: e.pool, Backend: "sim", Params: "step_ms=100", Slots: 1,
		Heartbeat: time.Second, Drain: 10 * time.Second, Register: time.Hour})
	defer stop(15 * time.Second)
	job := e.submit(t, `{"id":"registry-`+e.pool[:4]+`","prompt":"x","durationFrames":9,"windowFrames":9,"overlapFrames":4,"model":"sim",`+
		`"width":64,"height":64,"steps":15,"fps":24,"pool":"`+e.pool+`"}`)
	started := time.Now()
	e.waitWorker(t, id, "the running segment", func(info *spoolv1.WorkerInfo) bool {
		return len(info.CurrentTasks) == 1 && info.CurrentTasks[0] == job+"/0/1"
	})
	if held := time.Since(started); held > 1500*time.Millisecond { // the segment runs 1.5 s
		t.Fatalf("the registry showed the segment %v after submission", held)
	}
	e.waitDone(t, job)
	e.waitWorker(t, id, "no segment once done", func(info *spoolv1.WorkerInfo) bool { return len(info.CurrentTasks) == 0 })
}
