package devstack_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

// A killed part comes back on the same address with its data; a wiped NATS
// comes back empty; Postgres stopped fast keeps every committed row.
func TestKillRestartWipe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := devstacktest.Private(t, devstacktest.NATS, devstacktest.Postgres, devstacktest.MinIO)
	natsURL, dsn, s3 := s.NATSURL, s.PGDSN, s.S3Endpoint
	admin := s.NATSConfig()
	asAdmin := nats.UserInfo(admin.User, admin.Password.Reveal())

	sql := func(q string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, psql(t), dsn, "-Atc", q).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %q: %v: %s", q, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// The stack runs Postgres with synchronous_commit off, whose last commits a
	// kill may lose; this one is made durable before the kill.
	sql("begin; set local synchronous_commit = on; create table kept (n int); insert into kept values (7); commit")

	stream := func() error {
		nc, err := nats.Connect(natsURL, asAdmin)
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		_, err = js.Stream(ctx, "KEPT")
		return err
	}
	{
		nc, err := nats.Connect(natsURL, asAdmin)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept"}}); err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}

	for _, tc := range []struct {
		part string
		addr string
		end  func(string) error
	}{
		{devstack.PartNATS, hostPort(t, natsURL), s.Kill},
		{devstack.PartPostgres, hostPort(t, dsn), s.Kill},
		{devstack.PartMinIO, s3, s.Kill},
		{devstack.PartPostgres, hostPort(t, dsn), s.StopFast},
		{devstack.PartMinIO, s3, s.StopFast},
	} {
		if err := tc.end(tc.part); err != nil {
			t.Fatalf("end %s: %v", tc.part, err)
		}
		if c, err := net.DialTimeout("tcp", tc.addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections at %s", tc.part, tc.addr)
		}
		if err := tc.end(tc.part); !errors.Is(err, devstack.ErrNotRunning) {
			t.Errorf("second end of %s: %v, want ErrNotRunning", tc.part, err)
		}
		if err := s.Restart(ctx, tc.part); err != nil {
			t.Fatalf("restart %s: %v", tc.part, err)
		}
		if err := s.Restart(ctx, tc.part); !errors.Is(err, devstack.ErrNotRunning) {
			t.Errorf("restart of a running %s: %v, want ErrNotRunning", tc.part, err)
		}
	}
	if s.NATSURL != natsURL || s.PGDSN != dsn || s.S3Endpoint != s3 {
		t.Errorf("addresses moved: %s %s %s", s.NATSURL, s.PGDSN, s.S3Endpoint)
	}
	if got := sql("select n from kept"); got != "7" {
		t.Errorf("postgres row after kill and restart: %q, want 7", got)
	}
	if err := stream(); err != nil {
		t.Errorf("stream after kill and restart of nats: %v", err)
	}

	if err := s.Wipe(devstack.PartNATS); !errors.Is(err, devstack.ErrNotRunning) {
		t.Errorf("wipe of a running nats: %v, want ErrNotRunning", err)
	}
	if err := s.Kill(devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	if err := s.Wipe(devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx, devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	if err := stream(); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream after a wipe: %v, want ErrStreamNotFound", err)
	}
}
