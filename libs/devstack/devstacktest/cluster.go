package devstacktest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/realpart"
)

// NATSCluster starts a cluster of three real nats-server processes for t
// (devstack.StartNATSCluster; the binary is built into the tool cache when
// missing, about a minute the first time) and stops it when t ends. Its
// progress goes to t's log. A cluster that cannot start fails t as Require
// does, naming "make tools" when the binary is missing.
func NATSCluster(t testing.TB) *devstack.NATSCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	c, err := devstack.StartNATSCluster(ctx, devstack.ClusterOptions{Build: true, Logger: log})
	if err != nil {
		realpart.Missing(t, "devstacktest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("devstacktest: %v", err)
		}
	})
	return c
}

// LocalStream returns the state of node i's own replica of stream (in the
// global account), as node i's /jsz?streams=true reports it, and whether
// node i holds one: what it has on its disk, whoever leads the stream.
// An unreachable monitoring port fails t.
func LocalStream(t testing.TB, c *devstack.NATSCluster, i int, stream string) (server.StreamState, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.MonitorURL(i)+"/jsz?streams=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("devstacktest: node %s: %v", c.Name(i), err)
	}
	defer resp.Body.Close()
	var jz server.JSInfo
	if err := json.NewDecoder(resp.Body).Decode(&jz); err != nil {
		t.Fatalf("devstacktest: node %s: /jsz: %s: %v", c.Name(i), resp.Status, err)
	}
	for _, a := range jz.AccountDetails {
		for _, s := range a.Streams {
			if s.Name == stream {
				return s.State, true
			}
		}
	}
	return server.StreamState{}, false
}
