package stitcher_test

import (
	"context"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestPipelineWithRealWorker: a chain job runs through the dispatcher, a
// worker with two ref slots (h264) and the stitcher; the final MP4 decodes
// to exactly the planned frames, and the job records it.
func TestPipelineWithRealWorker(t *testing.T) {
	e := newEnv(t)
	s, err := newH264Stitcher(e)
	if err != nil {
		t.Fatal(err)
	}
	e.run(t, s.Run)
	wk, err := worker.New(worker.Config{ID: "w-" + e.pool, Pool: e.pool, Backend: "ref", Slots: 2, Heartbeat: time.Second},
		e.bus, e.blob, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wk.Close)
	e.run(t, wk.Run)
	if _, err := e.bus.JetStream().Publish(context.Background(), "spool.jobs.submit",
		[]byte(`{"id":"pipeline","prompt":"a lighthouse at dusk","durationFrames":40,"windowFrames":13,"overlapFrames":4,`+
			`"width":96,"height":64,"steps":3,"fps":24,"pool":"`+e.pool+`"}`)); err != nil {
		t.Fatal(err)
	}
	j := e.waitJob(t, "pipeline", store.JobSucceeded)
	frames := e.finalSized(t, j, 96, 64)
	if len(frames) != 40 || j.FinalFrames != 40 {
		t.Fatalf("%d frames decoded, %d recorded, want 40", len(frames), j.FinalFrames)
	}
}
