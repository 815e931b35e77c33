package devstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

// A three-node cluster forms with a meta leader; an R3 stream keeps its
// messages while a node is killed and comes back, and a node whose store
// was wiped catches up from the others; the faults refuse a node in the
// wrong state.
func TestNATSClusterKillRestartWipe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	begin := time.Now()
	c := devstacktest.NATSCluster(t)
	t.Logf("cluster of %d up in %v: %s", c.Nodes(), time.Since(begin).Round(time.Millisecond), c.URL())

	if c.Nodes() != 3 || len(strings.Split(c.URL(), ",")) != 3 {
		t.Fatalf("%d nodes, URL %q: want 3", c.Nodes(), c.URL())
	}
	leaders := map[string]bool{}
	for i := range c.Nodes() {
		if want := fmt.Sprintf("n%d", i+1); c.Name(i) != want {
			t.Errorf("node %d named %q, want %q", i, c.Name(i), want)
		}
		if !c.Running(i) {
			t.Errorf("node %s not running", c.Name(i))
		}
		var jz server.JSInfo
		getJSON(t, c.MonitorURL(i)+"/jsz", &jz)
		if jz.Meta == nil || jz.Meta.Leader == "" || jz.Meta.Size != 3 {
			t.Fatalf("node %s: meta cluster %+v, want a leader of 3", c.Name(i), jz.Meta)
		}
		leaders[jz.Meta.Leader] = true
		var vz server.Varz
		getJSON(t, c.MonitorURL(i)+"/varz", &vz)
		if vz.Name != c.Name(i) || vz.JetStream.Config == nil || !vz.JetStream.Config.SyncAlways {
			t.Errorf("node %s: varz name %q, jetstream config %+v: want sync always", c.Name(i), vz.Name, vz.JetStream.Config)
		}
	}
	if len(leaders) != 1 {
		t.Errorf("the nodes name different meta leaders: %v", leaders)
	}

	if nc, err := nats.Connect(c.URL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("the cluster accepted a connection without credentials")
	}
	// A user added while the cluster runs is taken by every node.
	late, err := c.NATSUser(bus.RoleWorker, "late", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes() {
		nc, err := nats.Connect(c.NodeURL(i), nats.UserInfo(late.User, late.Password.Reveal()), nats.NoReconnect())
		if err != nil {
			t.Fatalf("node %s: the user added at run time: %v", c.Name(i), err)
		}
		nc.Close()
	}
	admin := c.NATSConfig()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.UserInfo(admin.User, admin.Password.Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	sent := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			sent++
			if _, err := publishRetry(ctx, js, "kept", fmt.Sprintf("m%d", sent)); err != nil {
				t.Fatalf("publish %d: %v", sent, err)
			}
		}
	}
	// msgs is the stream's count as its leader reports it.
	msgs := func() uint64 {
		t.Helper()
		for {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := js.Stream(actx, "KEPT")
			cancel()
			if err == nil {
				return s.CachedInfo().State.Msgs
			}
			if ctx.Err() != nil {
				t.Fatalf("stream info: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// caughtUp waits until node i's own replica holds every message sent.
	caughtUp := func(i int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, ok := devstacktest.LocalStream(t, c, i, "KEPT")
			if ok && st.Msgs == uint64(sent) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s holds %+v (present %v), want %d messages", c.Name(i), st, ok, sent)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	publish(100)

	// A kill: the other two keep the stream, take more, and the node rejoins.
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if c.Running(1) {
		t.Error("node 1 running after Kill")
	}
	if err := c.Kill(1); !errors.Is(err, devstack.ErrNotRunning) {
		t.Errorf("second kill: %v, want ErrNotRunning", err)
	}
	if err := c.Wipe(0); !errors.Is(err, devstack.ErrNotRunning) {
		t.Errorf("wipe of a running node: %v, want ErrNotRunning", err)
	}
	if got := msgs(); got != 100 {
		t.Errorf("after a kill the stream holds %d messages, want 100", got)
	}
	publish(50)
	begin = time.Now()
	if err := c.Restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed node back and current in %v", time.Since(begin).Round(time.Millisecond))
	if err := c.Restart(ctx, 1); !errors.Is(err, devstack.ErrNotRunning) {
		t.Errorf("restart of a running node: %v, want ErrNotRunning", err)
	}
	caughtUp(1)

	// A clean stop, then a lost disk: the node comes back empty and
	// catches up from the others.
	if err := c.StopNode(2); err != nil {
		t.Fatal(err)
	}
	if err := c.Wipe(2); err != nil {
		t.Fatal(err)
	}
	publish(50)
	begin = time.Now()
	if err := c.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	t.Logf("wiped node back and current in %v", time.Since(begin).Round(time.Millisecond))
	caughtUp(2)
	for i := range c.Nodes() {
		caughtUp(i)
	}
	if got := msgs(); got != uint64(sent) {
		t.Errorf("stream holds %d messages, want %d", got, sent)
	}
}

// publishRetry publishes until a PubAck comes, retrying (with the same
// Nats-Msg-Id, so a retry is never a second copy) while a leader is elected.
func publishRetry(ctx context.Context, js jetstream.JetStream, subject, id string) (*jetstream.PubAck, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err := js.Publish(actx, subject, []byte(id), jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return ack, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// Without the binary, and not allowed to build it, StartNATSCluster fails
// with ErrMissingBinary, naming the make target that installs it.
func TestNATSClusterMissingBinary(t *testing.T) {
	t.Chdir(t.TempDir()) // no repo root, so no .spool/bin
	t.Setenv("HOME", t.TempDir())
	t.Setenv("TOOLCACHE", "")
	t.Setenv("SPOOL_NATS_SERVER_BIN", filepath.Join(t.TempDir(), "nats-server"))
	_, err := devstack.StartNATSCluster(t.Context(), devstack.ClusterOptions{})
	if !errors.Is(err, devstack.ErrMissingBinary) || !strings.Contains(err.Error(), `"make tools"`) {
		t.Fatalf("start without nats-server: %v, want ErrMissingBinary naming make tools", err)
	}
}
