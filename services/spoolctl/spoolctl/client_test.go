package spoolctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

// TestSubmitWatchLineage: spoolctl submit --watch -o shows the progress
// (plain lines, as its stderr is no terminal) and writes the video; status, lineage and download work; a cancel
// of the finished job is refused with the gateway's message.
func TestSubmitWatchLineage(t *testing.T) {
	sys := systest.Start(t, 0, 2)
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	_ = os.WriteFile(spec, []byte(`{"id":"cli-job","prompt":"a lighthouse at dusk","durationFrames":30,"windowFrames":13,`+
		`"overlapFrames":4,"width":96,"height":64,"steps":3,"fps":24}`), 0o644)
	out := filepath.Join(dir, "out", "video.mp4")
	t.Setenv("SPOOL_API_KEY", sys.Key) // as spoolctl dev's exports set it
	ctl := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := spoolctl.Main(context.Background(), append(args, "--api", sys.API.URL), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	stdout, stderr, err := ctl("submit", "--watch", "-o", out, spec)
	if err != nil || !strings.Contains(stdout, "wrote "+out) || !strings.Contains(stderr, "100%") || !strings.Contains(stderr, "3/3 segments") ||
		strings.Contains(stderr, "\r") {
		t.Fatalf("submit --watch: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	info, err := media.Probe(context.Background(), out, media.ProbeOptions{CountFrames: true})
	if err != nil || info.Frames != 30 {
		t.Fatalf("the video: %d frames, %v", info.Frames, err)
	}
	if stdout, _, err := ctl("status", "cli-job"); err != nil || !strings.Contains(stdout, `"state": "succeeded"`) {
		t.Fatalf("status: %v %s", err, stdout)
	}
	if stdout, _, err := ctl("lineage", "cli-job"); err != nil || strings.Count(stdout, "done") != 3 || !strings.Contains(stdout, "systest/") {
		t.Fatalf("lineage: %v\n%s", err, stdout)
	}
	again := filepath.Join(dir, "again.mp4")
	if _, _, err := ctl("download", "cli-job", "-o", again); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Fatal("two downloads differ")
	}
	if _, _, err := ctl("cancel", "cli-job"); err == nil || !strings.Contains(err.Error(), "already succeeded") {
		t.Fatalf("cancel of a finished job: %v", err)
	}
	if _, _, err := ctl("status", "no-such-job"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("status of a missing job: %v", err)
	}
}
