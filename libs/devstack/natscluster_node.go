package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterName is the name of the NATS cluster the nodes form.
const clusterName = "spool"

// clusterNode is one nats-server of a NATSCluster.
type clusterNode struct {
	name                   string // server name, n1..
	dir                    string // holds nats.conf, nats.log and store/
	client, route, monitor int    // ports on 127.0.0.1
	proc                   *process
}

func (nd *clusterNode) conf() string       { return filepath.Join(nd.dir, "nats.conf") }
func (nd *clusterNode) store() string      { return filepath.Join(nd.dir, "store") }
func (nd *clusterNode) monitorURL() string { return "http://127.0.0.1:" + strconv.Itoa(nd.monitor) }

// writeConfig writes nd's config file, routed to every other node of all,
// with auth, the authorization block of the cluster's users.
func (nd *clusterNode) writeConfig(all []*clusterNode, auth string) error {
	if err := os.MkdirAll(nd.dir, 0o755); err != nil {
		return fmt.Errorf("nats node %s: %w", nd.name, err)
	}
	var routes []string
	for _, o := range all {
		if o != nd {
			routes = append(routes, strconv.Quote("nats-route://127.0.0.1:"+strconv.Itoa(o.route)))
		}
	}
	conf := fmt.Sprintf(`# nats-server %s, node %s of a devstack cluster of %d
server_name: %s
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
logtime: true

jetstream {
  store_dir: %s
  # Every write reaches the disk (fsync) before it is acknowledged: a
  # PubAck then means the message is on the disks of a quorum.
  sync_interval: always
}

cluster {
  name: %s
  listen: "127.0.0.1:%d"
  routes: [%s]
}

%s`, NATSServerVersion, nd.name, len(all), nd.name, nd.client, nd.monitor, strconv.Quote(nd.store()),
		clusterName, nd.route, strings.Join(routes, ", "), auth)
	if err := os.WriteFile(nd.conf(), []byte(conf), 0o600); err != nil { // password hashes
		return fmt.Errorf("nats node %s: write config: %w", nd.name, err)
	}
	return nil
}

// start starts nd's server from its config file, its output appended to
// its log. The caller holds the cluster's lock.
func (nd *clusterNode) start(bin string) error {
	cmd := exec.Command(bin, "-c", nd.conf())
	cmd.Dir = nd.dir
	p, err := startProcess("nats "+nd.name, cmd, filepath.Join(nd.dir, "nats.log"), syscall.SIGKILL, nil)
	if err != nil {
		return err
	}
	nd.proc = p
	return nil
}

// readiness is how far formed checks a node.
type readiness int

const (
	// jsEnabled: up, routed to its running peers, JetStream enabled.
	jsEnabled readiness = iota
	// metaLeaderKnown: jsEnabled, and it knows the JetStream meta leader.
	metaLeaderKnown
	// jsCurrent: its full /healthz is ok: it knows the meta leader and every
	// stream and consumer replica it holds is current.
	jsCurrent
)

// formed returns nil when nd has a route to each of peers (server names;
// nd's own is ignored) and is as ready as want, else what it lacks.
func (nd *clusterNode) formed(ctx context.Context, peers []string, want readiness) error {
	client := &http.Client{Timeout: 2 * time.Second}
	health := "/healthz?js-enabled-only=true"
	if want == jsCurrent {
		health = "/healthz"
	}
	var hs server.HealthStatus
	if err := getJSON(ctx, client, nd.monitorURL()+health, &hs); err != nil {
		return err
	}
	if hs.Status != "ok" {
		return fmt.Errorf("%s: %s %s", health, hs.Status, hs.Error)
	}
	var rz server.Routez
	if err := getJSON(ctx, client, nd.monitorURL()+"/routez", &rz); err != nil {
		return err
	}
	for _, p := range peers {
		if p != nd.name && !slices.ContainsFunc(rz.Routes, func(r *server.RouteInfo) bool { return r.RemoteName == p }) {
			return fmt.Errorf("no route to %s yet", p)
		}
	}
	if want == metaLeaderKnown {
		var jz server.JSInfo
		if err := getJSON(ctx, client, nd.monitorURL()+"/jsz", &jz); err != nil {
			return err
		}
		if jz.Meta == nil || jz.Meta.Leader == "" {
			return fmt.Errorf("no jetstream meta leader yet")
		}
	}
	return nil
}

// getJSON GETs url into v. A non-2xx status with a JSON body (/healthz
// answers 503 with its status) is decoded too, and is not an error.
func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %s: %w", url, resp.Status, err)
	}
	return nil
}
