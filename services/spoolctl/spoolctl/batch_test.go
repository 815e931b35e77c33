package spoolctl_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// TestSubmitBatch: spoolctl submit with several specs sends them in one
// POST /batches, two files or a .jsonl alike, prints each spec's job id or
// error, and with --watch follows the batch until every job has ended; a
// refused spec makes the command fail after the others are submitted.
func TestSubmitBatch(t *testing.T) {
	sys := systest.Start(t, 0, 2)
	dir := t.TempDir()
	spec := `{"prompt":"a lighthouse","durationFrames":22,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":2,"fps":24}`
	a, b, lines := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), filepath.Join(dir, "more.jsonl")
	_ = os.WriteFile(a, []byte(spec), 0o644)
	_ = os.WriteFile(b, []byte(spec), 0o644)
	_ = os.WriteFile(lines, []byte(spec+"\n\n"+`{"prompt":"x","fps":500}`+"\n"), 0o644)
	ctl := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := spoolctl.Main(context.Background(), append(args, "--api", sys.API.URL, "--key", sys.Key), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	batch := fmt.Sprintf("cli-b-%d", time.Now().UnixNano()%1e9) // the database outlives one run of the test
	stdout, stderr, err := ctl("submit", "--watch", "--batch", batch, a, b)
	if err != nil || !strings.Contains(stdout, "0\t"+batch+"-0\n") || !strings.Contains(stdout, "1\t"+batch+"-1\n") ||
		!strings.Contains(stdout, "2 of 2 specs submitted") || !strings.Contains(stderr, "100%  2/2 jobs ended  44/44 frames") {
		t.Fatalf("submit two files: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	// The same batch again: a retry, the same jobs.
	if stdout, _, err := ctl("submit", "--batch", batch, a, b); err != nil || !strings.Contains(stdout, "1\t"+batch+"-1\n") {
		t.Fatalf("the batch again: %v\n%s", err, stdout)
	}
	stdout, _, err = ctl("submit", lines)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 specs refused") || !strings.Contains(stdout, "1\trefused\tinvalid_argument (fps)") ||
		!strings.Contains(stdout, "1 of 2 specs submitted") {
		t.Fatalf("a .jsonl with a bad spec: %v\n%s", err, stdout)
	}
	if _, _, err := ctl("submit", "-o", filepath.Join(dir, "x.mp4"), "--watch", a, b); err == nil || !strings.Contains(err.Error(), "spoolctl download") {
		t.Fatalf("-o with a batch: %v", err)
	}
}
