package stitcher_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestLiveSlidingWindowThenStop: a live job's playlist is a sliding window
// of its last pieces; once the job is stopped, the stitcher finalizes it
// with every frame made so far and closes the playlist.
func TestLiveSlidingWindowThenStop(t *testing.T) {
	e := newEnv(t)
	e.stitcher(t, "s1") // LiveWindow 3
	ctx := context.Background()
	msg := nats.NewMsg(bus.SubjectJobSubmit)
	msg.Data = []byte(fmt.Sprintf(`{"id":"live","prompt":"x","model":"sim","live":true,"windowFrames":9,"overlapFrames":3,`+
		`"width":%d,"height":%d,"steps":1,"fps":24,"pool":"%s"}`, w, h, e.pool))
	msg.Header.Set(bus.HeaderContentType, bus.ContentJSON)
	if _, err := e.bus.JetStream().PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	c, err := e.bus.DeclarePool(ctx, e.pool)
	if err != nil {
		t.Fatal(err)
	}
	var tasks []*spoolv1.SegmentTask
	for len(tasks) < 5 {
		m, err := fetch(t, c)
		if err != nil {
			t.Fatal(err)
		}
		task, _ := bus.DecodeTask(m.Data())
		_ = m.Ack()
		tasks = append(tasks, task)
		key, _ := blob.SegmentTail(task.JobId, task.Index, task.Attempt)
		if _, err := e.bus.PublishResult(ctx, &spoolv1.SegmentResult{JobId: task.JobId, Index: task.Index, Attempt: task.Attempt,
			Phase: spoolv1.Phase_PHASE_TAIL_READY, Pool: task.Pool, TailKey: string(key)}); err != nil {
			t.Fatal(err)
		}
		e.done(t, task, 1, 0)
	}
	key, _ := blob.HLSPlaylist("live")
	deadline := time.Now().Add(20 * time.Second)
	var text string
	for time.Now().Before(deadline) {
		data, err := readAll(e.blob, key)
		if text = string(data); err == nil && strings.Contains(text, "\n4.m4s") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(text, "#EXT-X-MEDIA-SEQUENCE:2\n") || strings.Contains(text, "\n1.m4s") || !strings.Contains(text, "\n2.m4s") ||
		strings.Contains(text, "ENDLIST") || strings.Contains(text, "PLAYLIST-TYPE") {
		t.Fatalf("live playlist:\n%s", text)
	}
	// Stop the live job: the dispatcher records the cancel, the stitcher
	// finalizes the five segments it has.
	if err := e.bus.PublishCancel(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		j, _ := e.store.GetJob(ctx, "live")
		if j.FinalKey != "" {
			check(t, e.final(t, j), expectChain(tasks))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stopped live job was not finalized: %+v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}
	data, _ := readAll(e.blob, key)
	if !strings.Contains(string(data), "#EXT-X-ENDLIST") || !strings.Contains(string(data), "\n0.m4s") {
		t.Fatalf("final playlist of the live job:\n%s", data)
	}
	if st, err := e.store.GetStitch(ctx, "live"); err != nil || !st.Finalized {
		t.Fatalf("stitch %+v, %v", st, err)
	}
}
