package spoolctl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/services/gateway/gateway"
	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
)

// TestQuotaCommand: spoolctl quota set changes only the overrides it is
// given ("default" removes one), quota get shows the limits in force, the
// overrides and the use, and a submission a quota refuses fails with the
// gateway's message and its Retry-After.
func TestQuotaCommand(t *testing.T) {
	c := devstacktest.Connect(t, 0)
	g, err := gateway.New(gateway.Config{Pools: "default:ref,sim", MaxBody: 4096, Quotas: gateway.Quotas{QueuedJobs: 1},
		URLKey: config.Secret(devstacktest.URLKey())}, c.Bus, c.Store, c.Blob, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	key := devstacktest.AdminKey(t, c.Store) // quotas are an admin's; its spec names its tenant
	ctl := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := spoolctl.Main(context.Background(), append(args, "--api", srv.URL, "--key", key), &stdout, &stderr)
		return stdout.String() + stderr.String(), err
	}
	tenant := fmt.Sprintf("ctl-%d", time.Now().UnixNano()%1e9)
	fields := func(out, row string) []string {
		for _, line := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(line, row); ok {
				return strings.Fields(rest)
			}
		}
		t.Fatalf("no row %q in\n%s", row, out)
		return nil
	}
	out, err := ctl("quota", "set", "--tenant", tenant, "--queued-jobs", "5", "--running-segments", "2", "--daily-seconds", "0")
	if err != nil || !strings.Contains(out, "tenant "+tenant) {
		t.Fatalf("quota set: %v\n%s", err, out)
	}
	if f := fields(out, "queued jobs"); strings.Join(f, " ") != "5 5 0" {
		t.Fatalf("queued jobs row %v:\n%s", f, out)
	}
	if f := fields(out, "seconds per UTC day"); f[0] != "unlimited" || f[1] != "unlimited" {
		t.Fatalf("seconds row %v:\n%s", f, out)
	}
	out, err = ctl("quota", "set", "--tenant", tenant, "--queued-jobs", "default")
	if err != nil {
		t.Fatalf("quota set default: %v\n%s", err, out)
	}
	out, err = ctl("quota", "get", "--tenant", tenant)
	if err != nil {
		t.Fatalf("quota get: %v\n%s", err, out)
	}
	if f := fields(out, "queued jobs"); strings.Join(f, " ") != "1 default 0" {
		t.Fatalf("queued jobs back to the default (1): %v\n%s", f, out)
	}
	if f := fields(out, "running segments"); strings.Join(f, " ") != "2 2 0" {
		t.Fatalf("running segments kept: %v\n%s", f, out)
	}
	if _, err := ctl("quota", "set", "--tenant", tenant, "--queued-jobs", "-3"); err == nil {
		t.Fatal("a negative limit was sent")
	}
	if _, err := ctl("quota", "set", "--tenant", tenant); err == nil || !strings.Contains(err.Error(), "at least one of") {
		t.Fatalf("set without a limit: %v", err)
	}
	if _, err := ctl("quota", "get"); err == nil || !strings.Contains(err.Error(), "--tenant") {
		t.Fatalf("get without a tenant: %v", err)
	}

	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	_ = os.WriteFile(spec, []byte(`{"prompt":"x","durationFrames":20,"tenant":"`+tenant+`"}`), 0o644)
	if out, err := ctl("submit", spec); err != nil {
		t.Fatalf("first submit: %v\n%s", err, out)
	}
	want := fmt.Sprintf("tenant %s: 1 queued job, the quota is 1 (resource_exhausted; retry after 10 s)", tenant)
	if _, err := ctl("submit", spec); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second submit: %v; want %q", err, want)
	}
}
