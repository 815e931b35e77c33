// Package systest starts the whole system in a test: the real stack
// (devstacktest), the dispatcher, the stitcher and the gateway, with
// worker slots in process when asked. It is imported by tests only.
package systest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/gateway/gateway"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// Pool is the GPU pool of the system's jobs.
const Pool = "default"

// PoolModels are the models Pool serves, and every worker of it loads:
// the catalog's CPU models, as in spoolctl dev.
var PoolModels = jobspec.DefaultCatalog().CPUModels()

// System is the running system.
type System struct {
	devstacktest.Clients
	API *httptest.Server // the gateway
	// Key is an admin API key of the gateway: requests send it as
	// "Authorization: Bearer <Key>" (Do does), and ?tenant= or a spec's
	// tenant names the tenant they act for.
	Key string
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Start starts the system; slots > 0 adds an in-process worker with that
// many CPU slots, serving PoolModels. Everything stops when the test ends.
func Start(t *testing.T, ackWait time.Duration, slots int) *System {
	t.Helper()
	return StartPools(t, ackWait, slots, nil)
}

// StartPools is Start with more pools besides Pool, declared to the
// dispatcher and the gateway (their workers are the caller's to start,
// e.g. spool-worker processes of a python model).
func StartPools(t *testing.T, ackWait time.Duration, slots int, more jobspec.Pools) *System {
	t.Helper()
	return On(t, devstacktest.Connect(t, ackWait), slots, more)
}

// On is StartPools on the stack that c connects to (e.g. a private one, for
// a test that kills and restarts its parts); tune, if given, changes the
// dispatcher's configuration first.
func On(t *testing.T, c devstacktest.Clients, slots int, more jobspec.Pools, tune ...func(*dispatcher.Config)) *System {
	t.Helper()
	pools := append(jobspec.Pools{{Name: Pool, Models: PoolModels}}, more...).String()
	ctx := context.Background()
	cfg := dispatcher.Config{Pools: pools, MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond,
		ReconcileEvery: time.Hour, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 16, LiveAhead: 2, OutboxBatch: 64,
		SubmitBatch: 16, SegmentDeadline: time.Minute}
	for _, f := range tune {
		f(&cfg)
	}
	d, err := dispatcher.New(ctx, cfg, c.Bus, c.Store, quiet(), dispatcher.WithBlob(c.Blob))
	if err != nil {
		t.Fatal(err)
	}
	sti, err := stitcher.New(stitcher.Config{ID: "systest", PartSize: blob.MinPartSize, OpenJobs: 4, Parallel: 4, Lease: 5 * time.Second,
		LiveWindow: 3, Codec: "h264", Sweep: time.Second}, c.Bus, c.Store, c.Blob, quiet())
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Pools: pools, MaxBody: 1 << 20, URLKey: config.Secret(devstacktest.URLKey())}, c.Bus, c.Store, c.Blob, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s := &System{Clients: c, API: httptest.NewServer(g.Handler()), Key: devstacktest.AdminKey(t, c.Store)}
	t.Cleanup(s.API.Close)
	s.Run(t, d.Run)
	s.Run(t, sti.Run)
	if slots > 0 {
		wk, err := worker.New(worker.Config{ID: "systest", Pool: Pool, Models: PoolModels, Slots: slots, Heartbeat: time.Second},
			c.Bus, c.Blob, nil, quiet())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(wk.Close)
		s.Run(t, wk.Run)
	}
	return s
}

// Run runs fn until the test ends.
func (s *System) Run(t *testing.T, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = fn(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}
