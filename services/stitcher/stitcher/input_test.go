package stitcher_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/hls"
	"github.com/spoolvideo/spool/libs/store"
)

// TestExtensionKeepsInputAcrossResume: an extension with include_input of
// a 1 s, 24 fps video (24 frames of one grey) gets the input's frames
// first, then its segments' new frames, exactly; the stitcher is stopped
// after segment 0 and another one finishes the job; the playlist lists the
// input's pieces (in<k>.m4s, at most the longest piece each) before the
// segments'.
func TestExtensionKeepsInputAcrossResume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.mp4")
	if b, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=0x404040:size=64x64:rate=24:duration=1",
		"-c:v", "libx264rgb", "-crf", "0", "-pix_fmt", "rgb24", in).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	id := e.clients.Upload(t, "default", in, "video", 1)
	job := unique("extend")
	spec := `{"id":"` + job + `","prompt":"x","model":"sim","durationFrames":12,"windowFrames":9,"overlapFrames":3,"width":64,"height":64,` +
		`"steps":1,"fps":24,"pool":"` + e.pool + `","video":"` + id + `","includeInput":true}`
	stop := e.stitcher(t, "s1")
	tasks := e.chainTasksSpec(t, spec, 2)
	if tasks[0].FirstFrame != 24-3 || tasks[0].Overlap != 3 || tasks[0].PrefixFrames != 3 || tasks[0].PrefixKey == "" {
		t.Fatalf("segment 0 of the extension: first frame %d, overlap %d, prefix %d at %q; want 21, 3, 3", tasks[0].FirstFrame,
			tasks[0].Overlap, tasks[0].PrefixFrames, tasks[0].PrefixKey)
	}
	e.done(t, tasks[0], 1, 0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ps, _ := e.store.ListPieces(ctx, job, 0); len(ps) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("segment 0 was not appended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	e.stitcher(t, "s2") // after s1's lease
	e.done(t, tasks[1], 1, 0)
	j := e.waitJob(t, job, store.JobSucceeded)
	want := bytes.Repeat([]byte{0x40}, 24)
	for _, task := range tasks {
		for i := int(task.Overlap); i < int(task.Frames-task.TrimFrames); i++ {
			want = append(want, pixel(int(task.Index), i))
		}
	}
	if len(want) != 24+12 {
		t.Fatalf("expected %d frames", len(want))
	}
	check(t, e.final(t, j), want)
	plKey, _ := blob.HLSPlaylist(job)
	r, _, err := e.blob.Get(ctx, plKey)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(r)
	r.Close()
	pl, err := hls.Parse(buf.String())
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, s := range pl.Segments {
		uris = append(uris, s.URI)
	}
	if got := strings.Join(uris, " "); got != "in0.m4s in1.m4s in2.m4s in3.m4s 0.m4s 1.m4s" {
		t.Errorf("playlist segments %s; want the input's 4 pieces of 6 frames, then 0 and 1", got)
	}
}
