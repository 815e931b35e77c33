package stitcher_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// noise is frame i of segment seg: seeded noise, which no codec shrinks,
// so that a few segments fill 5 MiB parts.
func noise(seg, i, size int) []byte {
	r := rand.New(rand.NewPCG(uint64(seg), uint64(i)))
	f := make([]byte, size)
	for k := 0; k < size; k += 8 {
		v := r.Uint64()
		for b := 0; b < 8 && k+b < size; b++ {
			f[k+b] = byte(v >> (8 * b))
		}
	}
	return f
}

// TestKilledStitcherProcessResumes: two spool-stitcher processes share
// the results; the one holding the job's lease is killed with SIGKILL after
// it has uploaded a part and appended past it. The other, already running,
// takes the lease over once it expires and resumes from Postgres and the
// pieces, and the final MP4 decodes to exactly the expected frames (none
// lost, none doubled).
func TestKilledStitcherProcessResumes(t *testing.T) {
	const side = 256
	e := newEnv(t)
	st := devstacktest.Require(t, devstacktest.NATS, devstacktest.Postgres, devstacktest.MinIO)
	procs := map[string]*exec.Cmd{}
	start := func(id string) *exec.Cmd {
		cmd := exec.Command(devstacktest.Binary(t, "../cmd/spool-stitcher"))
		cmd.Env = append(append(os.Environ(), devstacktest.ServiceEnv(t, st, bus.RoleStitcher, "", "")...), "SPOOL_STITCHER_ID="+id, "SPOOL_STITCHER_CODEC=lossless",
			"SPOOL_STITCHER_LEASE=2s", "SPOOL_STITCHER_SWEEP_EVERY=500ms", "SPOOL_LOG_LEVEL=warn")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		procs[id] = cmd
		return cmd
	}
	ctx := context.Background()
	spec := fmt.Sprintf(`{"id":"killed","prompt":"x","model":"sim","durationFrames":%d,"windowFrames":9,"overlapFrames":3,`+
		`"width":%d,"height":%d,"steps":1,"fps":24,"pool":"%s"}`, 9+11*6, side, side, e.pool)
	tasks := e.chainTasksSpec(t, spec, 12)
	var want [][32]byte
	encodeDone := func(task *spoolv1.SegmentTask) {
		from, startAt := 0, int64(task.FirstFrame)
		if task.Index > 0 {
			from, startAt = int(task.Overlap), startAt+int64(task.Overlap)
		}
		var enc bytes.Buffer
		en, err := media.NewEncoder(ctx, &enc, media.EncodeOptions{Width: side, Height: side, FPS: 24, Codec: media.Lossless()})
		if err != nil {
			t.Fatal(err)
		}
		for i := from; i < int(task.Frames); i++ {
			f := noise(int(task.Index), i, side*side*3)
			want = append(want, sha256.Sum256(f))
			if err := en.WriteFrame(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := en.Close(); err != nil {
			t.Fatal(err)
		}
		c, err := media.Retime(enc.Bytes(), 24, startAt, 1)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := blob.SegmentVideo(task.JobId, task.Index, 1, "mp4")
		data := append(c.Init, c.Media...)
		info, err := e.blob.Put(ctx, key, bytes.NewReader(data), int64(len(data)), blob.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.bus.PublishResult(ctx, &spoolv1.SegmentResult{JobId: task.JobId, Index: task.Index, Attempt: 1,
			Phase: spoolv1.Phase_PHASE_DONE, Pool: task.Pool, VideoKey: string(key), Sha256: info.SHA256, Bytes: uint64(info.Size),
			Frames: uint32(c.Frames), WorkerId: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	start("p1")
	start("p2")
	for _, task := range tasks[:8] {
		encodeDone(task)
	}
	// Kill once a part is uploaded and the buffer holds pieces past it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := e.store.GetStitch(ctx, "killed")
		if err == nil && len(s.Parts) >= 1 && s.Appended > s.NextIndex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no part uploaded with pieces past it: %+v %v", s, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before, _ := e.store.GetStitch(ctx, "killed")
	victim, ok := procs[before.Owner]
	if !ok {
		t.Fatalf("the lease is held by %q, not by p1 or p2", before.Owner)
	}
	_ = victim.Process.Signal(syscall.SIGKILL)
	_ = victim.Wait()
	before, _ = e.store.GetStitch(ctx, "killed")
	for _, task := range tasks[8:] {
		encodeDone(task)
	}
	j := e.waitJob(t, "killed", store.JobSucceeded)
	r, _, err := e.blob.Get(ctx, blob.Key(j.FinalKey))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := readAllReader(r)
	frames, err := media.DecodeRGB(ctx, data, side, side)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d (killed with %d parts, %d segments appended)", len(frames), len(want), len(before.Parts), before.Appended)
	}
	for i, f := range frames {
		if sha256.Sum256(f) != want[i] {
			t.Fatalf("frame %d differs", i)
		}
	}
	if sum := sha256.Sum256(data); fmt.Sprintf("%x", sum) != j.FinalSHA256 {
		t.Fatalf("the job's sha256 %s is not the object's %x", j.FinalSHA256, sum)
	}
	after, _ := e.store.GetStitch(ctx, "killed")
	// Only the other process was alive to finish it.
	t.Logf("%s killed with %d parts and %d segments appended; the other finished with %d parts", before.Owner, len(before.Parts),
		before.Appended, len(after.Parts))
}
