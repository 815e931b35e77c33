package worker_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestTailHandOffOverlapsDecode: with two slots, segment k+1 starts (its
// own TAIL_READY follows) before segment k has decoded, encoded and uploaded
// (its DONE): the chain's critical path is denoising only.
func TestTailHandOffOverlapsDecode(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	// sim: 5 ms per step, 40 ms per decoded frame: decode (9 × 40 ms) is far
	// longer than denoising (4 × 5 ms).
	w, err := worker.New(worker.Config{ID: "h-" + e.pool[:6], Pool: e.pool, Backend: "sim", Params: "step_ms=5;frame_us=40000",
		Slots: 2, Heartbeat: time.Second}, e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e.run(t, "worker", w.Run)
	job := fmt.Sprintf("handoff-%d", time.Now().UnixNano()%1e9) // unique across -count runs
	subject, _ := bus.ResultsSubject(job)
	sub, err := e.bus.Conn().SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	id := e.submit(t, `{"id":"`+job+`","prompt":"x","durationFrames":19,"windowFrames":9,"overlapFrames":4,"model":"sim",`+
		`"width":64,"height":64,"steps":4,"fps":24,"pool":"`+e.pool+`"}`)
	var order []string
	for len(order) < 5 { // T0, T1, D0, D1, D2: the last segment hands out no tail

		m, err := sub.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("results so far %v: %v", order, err)
		}
		r, _ := bus.DecodeResult(m.Data)
		order = append(order, fmt.Sprintf("%s%d", map[spoolv1.Phase]string{spoolv1.Phase_PHASE_TAIL_READY: "T", spoolv1.Phase_PHASE_DONE: "D"}[r.GetPhase()], r.GetIndex()))
	}
	pos := map[string]int{}
	for i, o := range order {
		pos[o] = i
	}
	if pos["T1"] > pos["D0"] {
		t.Fatalf("segment k+1 waited for segment k's DONE: %v", order)
	}
	e.waitDone(t, id)
}
