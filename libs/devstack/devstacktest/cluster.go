package devstacktest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/realpart"
)

// NATSCluster starts a cluster of three real nats-server processes for t
// (devstack.StartNATSCluster; the binary is built into the tool cache when
// missing, about a minute the first time) and stops it when t ends. Its
// progress goes to t's log. The nodes' data and logs are removed when t
// passes; when it fails they are kept, and the end of each node's log is
// written to t's log. A cluster that cannot start fails t as Require does,
// naming "make tools" when the binary is missing.
func NATSCluster(t testing.TB) *devstack.NATSCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "spool-nats-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	c, err := devstack.StartNATSCluster(ctx, devstack.ClusterOptions{Dir: dir, Build: true, Logger: log})
	if err != nil {
		realpart.Missing(t, "devstacktest: %v (logs in %s)", err, dir)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("devstacktest: %v", err)
		}
		if !t.Failed() {
			os.RemoveAll(dir)
			return
		}
		for i := range c.Nodes() {
			t.Logf("devstacktest: the end of node %s's log %s:\n%s", c.Name(i), nodeLog(dir, c.Name(i)), tailFile(nodeLog(dir, c.Name(i)), 40))
		}
	})
	return c
}

// nodeLog is where a node of a cluster in dir logs (see ClusterOptions.Dir).
func nodeLog(dir, node string) string { return filepath.Join(dir, node, "nats.log") }

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// LocalStream returns the state of node i's own replica of stream (in the
// global account), as node i's /jsz?streams=true reports it, and whether
// node i holds one: what it has on its disk, whoever leads the stream.
// An unreachable monitoring port fails t.
func LocalStream(t testing.TB, c *devstack.NATSCluster, i int, stream string) (server.StreamState, bool) {
	t.Helper()
	jz := jsz(t, c, i, "?streams=true")
	for _, a := range jz.AccountDetails {
		for _, s := range a.Streams {
			if s.Name == stream {
				return s.State, true
			}
		}
	}
	return server.StreamState{}, false
}

// MetaLeader returns the server name of the JetStream meta leader as node
// i's /jsz reports it, "" when it knows none. An unreachable monitoring
// port fails t.
func MetaLeader(t testing.TB, c *devstack.NATSCluster, i int) string {
	t.Helper()
	if jz := jsz(t, c, i, ""); jz.Meta != nil {
		return jz.Meta.Leader
	}
	return ""
}

// jsz GETs node i's /jsz with query.
func jsz(t testing.TB, c *devstack.NATSCluster, i int, query string) server.JSInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.MonitorURL(i)+"/jsz"+query, nil)
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
	return jz
}
