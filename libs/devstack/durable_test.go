package devstack

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDurable: a durable stack runs Postgres with fsync, synchronous_commit
// and full_page_writes on and JetStream syncing every write, and keeps
// both across a restart of each part; the same directory started again
// without Durable runs the test settings.
func TestDurable(t *testing.T) {
	t.Setenv(pgDSNEnv, "") // this test is about devstack's own cluster
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	settings := func(s *Stack) (pg string, syncAlways bool) {
		t.Helper()
		psql := filepath.Join(filepath.Dir(mustPostgres(t).postgres), "psql")
		out, err := exec.CommandContext(ctx, psql, s.PGDSN, "-Atc",
			"select current_setting('fsync') || current_setting('synchronous_commit') || current_setting('full_page_writes')").CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v: %s", err, out)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return strings.TrimSpace(string(out)), s.nats.srv.JetStreamConfig().SyncAlways
	}

	s, err := Start(ctx, Options{Dir: dir, NATS: true, Postgres: true, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.PostgresPID() == 0 {
		t.Error("no Postgres process id")
	}
	if pg, sync := settings(s); !s.Durable() || pg != "ononon" || !sync {
		t.Errorf("durable stack: Durable() %v, postgres fsync|synchronous_commit|full_page_writes %q, jetstream sync always %v",
			s.Durable(), pg, sync)
	}
	for _, part := range []string{PartPostgres, PartNATS} {
		if err := s.StopFast(part); err != nil {
			t.Fatal(err)
		}
		if err := s.Restart(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	if pg, sync := settings(s); pg != "ononon" || !sync {
		t.Errorf("durable stack restarted: postgres %q, jetstream sync always %v", pg, sync)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	s, err = Start(ctx, Options{Dir: dir, NATS: true, Postgres: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if pg, sync := settings(s); s.Durable() || pg != "offoffoff" || sync {
		t.Errorf("test settings: Durable() %v, postgres %q, jetstream sync always %v", s.Durable(), pg, sync)
	}
}

func mustPostgres(t *testing.T) pgBinaries {
	t.Helper()
	b, err := newFinder().postgres()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
