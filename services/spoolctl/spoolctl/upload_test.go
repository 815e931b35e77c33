package spoolctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/realpart"
	"github.com/spoolvideo/spool/services/gateway/gateway"
	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
)

// TestUploadCommand: spoolctl upload streams a file, or PUTs it to a
// presigned URL, and prints its id; -json the record, -v the probe; the
// same file again is the same id; a refusal is the gateway's message.
func TestUploadCommand(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		realpart.Missing(t, "ffmpeg is not installed; run \"make deps\"")
	}
	c := devstacktest.Connect(t, 0)
	g, err := gateway.New(gateway.Config{Pools: "default:ref,sim", MaxBody: 4096, URLKey: config.Secret(devstacktest.URLKey())}, c.Bus, c.Store, c.Blob,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	video := filepath.Join(dir, "clip.mp4")
	image := filepath.Join(dir, "still.png")
	for out, args := range map[string][]string{
		video: {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=24", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p"},
		image: {"-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1"},
	} {
		if msg, err := exec.Command("ffmpeg", append(append([]string{"-v", "error", "-y"}, args...), out)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, msg)
		}
	}
	text := filepath.Join(dir, "notes.mp4")
	_ = os.WriteFile(text, []byte("eggs, milk, bread\n"), 0o644)
	tenant := fmt.Sprintf("cli%d", time.Now().UnixNano())
	key := devstacktest.AdminKey(t, c.Store)
	ctl := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := spoolctl.Main(context.Background(), append([]string{"upload", "--api", srv.URL, "--key", key, "-tenant", tenant}, args...), &stdout, &stderr)
		return strings.TrimSpace(stdout.String()), stderr.String(), err
	}
	id, stderr, err := ctl("-v", video)
	if err != nil || !strings.HasPrefix(id, "up-") || !strings.Contains(stderr, "video h264 160×120, 24 fps, 24 frames, 1.000 s") {
		t.Fatalf("upload: %v %q\n%s", err, id, stderr)
	}
	if again, stderr, err := ctl("-v", "-presign", video); err != nil || again != id || !strings.Contains(stderr, "same bytes") {
		t.Fatalf("the same file, presigned: %v %q, want %s\n%s", err, again, id, stderr)
	}
	out, _, err := ctl("-presign", "-json", image)
	var rec map[string]any
	if err != nil || json.Unmarshal([]byte(out), &rec) != nil || rec["kind"] != "image" || rec["width"] != float64(64) ||
		rec["content_type"] != "image/png" || rec["state"] != "ready" {
		t.Fatalf("upload -presign -json: %v\n%s", err, out)
	}
	if _, _, err := ctl(text); err == nil || !strings.Contains(err.Error(), "not media") {
		t.Fatalf("a text file: %v", err)
	}
	if _, _, err := ctl(filepath.Join(dir, "missing.mp4")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("a missing file: %v", err)
	}
	var help bytes.Buffer
	if err := spoolctl.Main(context.Background(), []string{"upload", "-h"}, io.Discard, &help); err != nil ||
		!strings.Contains(help.String(), "-presign") || !strings.Contains(help.String(), "prints its upload id") {
		t.Fatalf("upload -h: %v\n%s", err, help.String())
	}
}
