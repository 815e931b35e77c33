package devstacktest

import (
	"context"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/store"
)

// Clients are connections to the whole shared stack, closed when the test
// ends.
type Clients struct {
	Stack *devstack.Stack
	Bus   *bus.Bus
	Store *store.Store
	Blob  *blob.Store
}

// Connect requires NATS, Postgres and MinIO and connects to them, with the
// bucket ensured. ackWait sets SPOOL_NATS_ACK_WAIT for this bus (0: the
// default).
func Connect(t testing.TB, ackWait time.Duration) Clients {
	t.Helper()
	return ConnectTo(t, Require(t, NATS, Postgres, MinIO), ackWait)
}

// ConnectTo is Connect to st, a stack with the three parts: a Private one,
// for a test that kills and restarts them (clients reconnect on their own).
func ConnectTo(t testing.TB, st *devstack.Stack, ackWait time.Duration) Clients {
	t.Helper()
	ctx := context.Background()
	cfg := st.NATSConfig() // the admin: the test may do anything
	cfg.AckWait = ackWait
	b, err := bus.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	s, err := store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	bl, err := blob.New(st.S3Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := bl.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	return Clients{Stack: st, Bus: b, Store: s, Blob: bl}
}

// ServiceEnv is st.ServiceEnv(role, pool, worker): the variables of a
// service process connecting as its own NATS role; an error fails t.
func ServiceEnv(t testing.TB, st *devstack.Stack, role bus.Role, pool, worker string) []string {
	t.Helper()
	env, err := st.ServiceEnv(role, pool, worker)
	if err != nil {
		t.Fatal(err)
	}
	return env
}
