package devstack_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/devstack"
)

func TestStartAllPartsThenStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	externalPG := os.Getenv("SPOOL_PG_DSN") != ""

	begin := time.Now()
	s, err := devstack.Start(ctx, devstack.Options{
		NATS: true, Postgres: true, MinIO: true,
		BuildMinIO: true,
		Logger:     slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	total := time.Since(begin)
	times := s.StartupTimes()
	t.Logf("start-up: nats %v, postgres %v, minio %v; all three in parallel %v",
		times[devstack.PartNATS], times[devstack.PartPostgres], times[devstack.PartMinIO], total)
	stopped := false
	defer func() {
		if !stopped {
			s.Stop()
		}
	}()

	t.Run("nats jetstream", func(t *testing.T) {
		if nc, err := nats.Connect(s.NATSURL); err == nil {
			nc.Close()
			t.Fatalf("connect %s without a user: accepted, want an authorization violation", s.NATSURL)
		}
		admin := s.NATSConfig()
		nc, err := nats.Connect(s.NATSURL, nats.UserInfo(admin.User, admin.Password.Reveal()))
		if err != nil {
			t.Fatalf("connect %s: %v", s.NATSURL, err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.AccountInfo(ctx); err != nil {
			t.Fatalf("jetstream account info: %v", err)
		}
	})
	t.Run("postgres select", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, psql(t), s.PGDSN, "-Atc", "select current_database(), 1").CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v: %s", err, out)
		}
		if got := strings.TrimSpace(string(out)); !externalPG && got != "spool|1" {
			t.Fatalf("psql answered %q, want %q", got, "spool|1")
		}
	})
	t.Run("minio health", func(t *testing.T) {
		for _, path := range []string{"/minio/health/live", "/minio/health/ready"} {
			resp, err := http.Get("http://" + s.S3Endpoint + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s", path, resp.Status)
			}
		}
	})
	t.Run("env", func(t *testing.T) {
		admin := s.NATSConfig()
		want := []string{
			"SPOOL_NATS_URL=" + s.NATSURL,
			"SPOOL_NATS_USER=admin",
			"SPOOL_NATS_PASSWORD=" + admin.Password.Reveal(),
			"SPOOL_PG_DSN=" + s.PGDSN,
			"SPOOL_S3_ENDPOINT=" + s.S3Endpoint,
			"SPOOL_S3_ACCESS_KEY=spool",
			"SPOOL_S3_SECRET_KEY=spoolspool",
			"SPOOL_S3_BUCKET=spool",
		}
		got := s.Env()
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Fatalf("Env() = %q, want %q", got, want)
		}
		for _, tc := range []struct{ name, value, prefix string }{
			{"NATSURL", s.NATSURL, "nats://127.0.0.1:"},
			{"PGDSN", s.PGDSN, "postgres://spool@127.0.0.1:"},
			{"S3Endpoint", s.S3Endpoint, "127.0.0.1:"},
		} {
			if externalPG && tc.name == "PGDSN" {
				continue
			}
			if !strings.HasPrefix(tc.value, tc.prefix) {
				t.Errorf("%s = %q, want prefix %q", tc.name, tc.value, tc.prefix)
			}
		}
	})

	addrs := []string{hostPort(t, s.NATSURL), s.S3Endpoint}
	if !externalPG {
		addrs = append(addrs, hostPort(t, s.PGDSN))
	}
	begin = time.Now()
	stopped = true
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("stop: %v", time.Since(begin))
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
	if _, err := os.Stat(s.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stack dir %s not removed: %v", s.Dir(), err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if err := s.Add(ctx, devstack.Options{NATS: true}); !errors.Is(err, devstack.ErrStopped) {
		t.Errorf("Add after Stop = %v, want ErrStopped", err)
	}
}

func TestPostgresReusesClusterInGivenDir(t *testing.T) {
	t.Setenv("SPOOL_PG_DSN", "") // this test is about devstack's own cluster, whatever the environment points at
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	for i := range 2 {
		s, err := devstack.Start(ctx, devstack.Options{Dir: dir, Postgres: true})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		t.Logf("start %d: postgres %v", i, s.StartupTimes()[devstack.PartPostgres])
		out, err := exec.CommandContext(ctx, psql(t), s.PGDSN, "-Atc", "select 1").CombinedOutput()
		if err != nil {
			t.Errorf("psql %d: %v: %s", i, err, out)
		}
		if err := s.Stop(); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "postgres", "data", "PG_VERSION")); err != nil {
			t.Fatalf("given dir not kept: %v", err)
		}
	}
}

func TestPostgresFromEnvironment(t *testing.T) {
	const dsn = "postgres://someone@db.example:5432/spool?sslmode=disable"
	t.Setenv("SPOOL_PG_DSN", dsn)
	s, err := devstack.Start(context.Background(), devstack.Options{Postgres: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.PGDSN != dsn {
		t.Errorf("PGDSN = %q, want %q", s.PGDSN, dsn)
	}
	if got, want := s.Env(), []string{"SPOOL_PG_DSN=" + dsn}; !slices.Equal(got, want) {
		t.Errorf("Env() = %q, want %q", got, want)
	}
}

// psql finds the psql binary, beside the server's or on PATH.
func psql(t *testing.T) string {
	t.Helper()
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql"); len(m) > 0 {
		return m[len(m)-1]
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql not found: run \"make deps\" or \"apt-get install -y postgresql-client\"")
	}
	return p
}

// hostPort returns the host:port of a URL.
func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
