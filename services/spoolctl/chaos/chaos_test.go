package chaos_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/realpart"
	"github.com/spoolvideo/spool/services/spoolctl/chaos"
)

// services are the binaries the fleet runs, built for the test.
var services = []string{"dispatcher", "stitcher", "gateway", "worker"}

// buildServices builds spool-dispatcher, -stitcher, -gateway and -worker
// into one directory, in one go build.
func buildServices(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, s := range services {
		args = append(args, "../../"+s+"/cmd/spool-"+s)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	return dir
}

// TestShort is the chaos suite's short form: every service a process of
// its own on a three-node NATS cluster, Postgres and MinIO; sixteen jobs of
// every kind by HTTP and NATS; one fault of each kind, the processes' one
// after the other beside the dependencies'. Every job must succeed with the oracle's frames, each segment
// committed once, the queues and the registry empty, drains and the hung
// engine ending as they must. Recovery times are printed, not judged (they
// depend on the machine). SPOOL_CHAOS_SEED replays a seed.
func TestShort(t *testing.T) {
	var seed int64
	if s := os.Getenv("SPOOL_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("SPOOL_CHAOS_SEED=%q: %v", s, err)
		}
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		realpart.Missing(t, "chaos: ffmpeg: %v (make deps installs it)", err)
	}
	bin := buildServices(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, chaos.Options{Short: true, Seed: seed, Bin: bin, Log: t.Output()})
	if rep != nil {
		var b bytes.Buffer
		rep.Print(&b)
		t.Log(b.String())
	}
	if errors.Is(err, devstack.ErrMissingBinary) {
		realpart.Missing(t, "chaos: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("chaos checks failed (seed %d; replay: %s; logs in %s)", rep.Seed, rep.Replay, rep.Dir)
	}
}
