package keda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
)

// clusterReadyTimeout bounds the wait for the servers to route to each
// other and elect a JetStream meta leader, and for a consumer leader to
// move; generous, for a loaded machine.
const clusterReadyTimeout = 60 * time.Second

// The DNS names of the official NATS Helm chart installed as release "nats"
// in namespace "nats" (the chart's default nats.url, nats.nats.svc:4222,
// assumes that): a StatefulSet "nats" whose pods nats-0..nats-2 are also the
// servers' names (server_name: $POD_NAME), a ClusterIP Service "nats" and
// the StatefulSet's headless Service "nats-headless", which alone gives
// each pod a name, <pod>.nats-headless.nats.svc. The chart's routes are
// nats://<pod>.nats-headless:6222 with cluster.no_advertise: true. Seen from
// KEDA's namespace, the DNS search path turns "<name>.nats.svc" into the
// full name, so the zone answers the short names.
const (
	namespace       = "nats"
	clusterIPHost   = "nats.nats.svc"
	headlessService = "nats-headless"
	headlessHost    = headlessService + "." + namespace + ".svc"
)

// podAddrs are the loopback addresses of the three servers, pod i on
// podAddrs[i]: every server listens on its own address with the same ports,
// as pods do, so a name alone tells them apart.
var podAddrs = []netip.Addr{
	netip.MustParseAddr("127.0.0.21"), netip.MustParseAddr("127.0.0.22"), netip.MustParseAddr("127.0.0.23"),
}

func podName(i int) string { return "nats-" + strconv.Itoa(i) }

// k8sZone is the cluster DNS of that installation: both Service names
// answer with pod queried's address alone (a ClusterIP is one address; the
// headless Service's first answer decides which pod a client reaches), and
// each pod has its name under the headless Service, and the short form
// the routes use.
func k8sZone(queried int) map[string][]netip.Addr {
	z := map[string][]netip.Addr{
		clusterIPHost: {podAddrs[queried]},
		headlessHost:  {podAddrs[queried]},
	}
	for i, a := range podAddrs {
		z[podName(i)+"."+headlessHost] = []netip.Addr{a}
		z[podName(i)+"."+headlessService] = []netip.Addr{a}
	}
	return z
}

// natsCluster is embedded NATS servers with JetStream, on podAddrs,
// clustered as the official chart clusters its pods.
type natsCluster struct {
	servers []*server.Server
	monPort int      // every server's HTTP monitoring port
	bus     *bus.Bus // connected to pod 0
}

// startCluster starts n servers, pod i on podAddrs[i], and waits for
// JetStream (and, for n > 1, a meta leader with n current peers). Beyond
// one server, noAdvertise is cluster.no_advertise: true (the official
// chart), where a server's /varz lists no client URLs of the others; false
// is nats-server's default, where it lists every server's. Routes name the
// pods (<pod>.nats-headless:<port>), so the test's zone must be in use.
func startCluster(t *testing.T, n int, noAdvertise bool) *natsCluster {
	t.Helper()
	ports := freePorts(t, 3)
	clientPort, routePort, monPort := ports[0], ports[1], ports[2]
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats://%s.%s:%d", podName(i), headlessService, routePort)
	}
	c := &natsCluster{monPort: monPort}
	for i, addr := range podAddrs[:n] {
		opts := &server.Options{
			ServerName: podName(i),
			Host:       addr.String(),
			Port:       clientPort,
			HTTPHost:   addr.String(),
			HTTPPort:   monPort,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
		}
		if n > 1 {
			opts.Cluster = server.ClusterOpts{Name: "nats", Host: addr.String(), Port: routePort, NoAdvertise: noAdvertise}
			opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("nats server %s: %v", podName(i), err)
		}
		go srv.Start()
		c.servers = append(c.servers, srv)
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	}
	deadline := time.Now().Add(clusterReadyTimeout)
	for i, srv := range c.servers {
		if !srv.ReadyForConnections(time.Until(deadline)) {
			t.Fatalf("nats server %s not accepting connections after %v", podName(i), clusterReadyTimeout)
		}
	}
	for !c.jetStreamReady() {
		if time.Now().After(deadline) {
			for i, srv := range c.servers {
				t.Logf("%s: %d routes; JetStream enabled %v, current %v, meta leader %v, peers %v", podName(i),
					srv.NumRoutes(), srv.JetStreamEnabled(), srv.JetStreamIsCurrent(), srv.JetStreamIsLeader(), srv.JetStreamClusterPeers())
			}
			t.Fatalf("no JetStream meta leader with %d current peers after %v", n, clusterReadyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()
	b, err := bus.Connect(ctx, config.NATS{URL: c.servers[0].ClientURL(), Name: t.Name(), Replicas: n})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	c.bus = b
	return c
}

// jetStreamReady reports whether JetStream runs on every server and, on a
// cluster, one meta leader lists every server as a current peer.
func (c *natsCluster) jetStreamReady() bool {
	leaders := 0
	for _, srv := range c.servers {
		if !srv.JetStreamEnabled() {
			return false
		}
		if len(c.servers) == 1 {
			return true
		}
		if !srv.JetStreamIsCurrent() {
			return false
		}
		if srv.JetStreamIsLeader() { // only the meta leader lists the peers
			if len(srv.JetStreamClusterPeers()) != len(c.servers) {
				return false
			}
			leaders++
		}
	}
	return leaders == 1
}

// declare declares spool's streams, buckets and the pools' consumers as the
// services do, with one replica per server (the bus is connected as with
// SPOOL_NATS_REPLICAS, the chart's nats.replicas: 3 on three servers). A stream
// placement can still be settling just after the meta leader is elected,
// so Declare is retried until the deadline.
func (c *natsCluster) declare(t *testing.T, pools ...string) map[string]jetstream.Consumer {
	t.Helper()
	deadline := time.Now().Add(clusterReadyTimeout)
	var err error
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err = c.bus.Declare(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("declare: %v", err)
	}
	consumers := map[string]jetstream.Consumer{}
	for _, p := range pools {
		cons, err := c.bus.DeclarePool(t.Context(), p)
		if err != nil {
			t.Fatalf("declare pool %s: %v", p, err)
		}
		consumers[p] = cons
	}
	return consumers
}

// moveConsumerLeader steps the consumer's leader down in favour of server
// to (the JetStream API's consumer leader step-down with a preferred
// placement, as `nats consumer cluster step-down --preferred` sends it) and
// waits until JetStream names to the leader and every server agrees. While
// a leader is being elected, JetStream may not answer; that is retried.
func (c *natsCluster) moveConsumerLeader(t *testing.T, cons jetstream.Consumer, to int) {
	t.Helper()
	info := cons.CachedInfo()
	deadline := time.Now().Add(clusterReadyTimeout)
	last := "none sent"
	for {
		leader, err := c.consumerLeader(t, cons)
		if err == nil && leader == podName(to) && c.agreeOnLeader(info.Stream, info.Name, to) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s led by %q (%v), not %s, after %v; the last step-down's answer: %s",
				info.Name, leader, err, podName(to), clusterReadyTimeout, last)
		}
		if err == nil && leader != podName(to) {
			req, _ := json.Marshal(server.JSApiLeaderStepdownRequest{Placement: &server.Placement{Preferred: podName(to)}})
			subject := fmt.Sprintf(server.JSApiConsumerLeaderStepDownT, info.Stream, info.Name)
			if resp, err := c.bus.Conn().Request(subject, req, 5*time.Second); err != nil {
				last = err.Error()
			} else {
				last = string(resp.Data)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consumerLeader asks JetStream (the consumer's leader answers) which server
// leads cons.
func (c *natsCluster) consumerLeader(t *testing.T, cons jetstream.Consumer) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", fmt.Errorf("no cluster information")
	}
	return info.Cluster.Leader, nil
}

// agreeOnLeader reports whether server i alone leads the consumer.
func (c *natsCluster) agreeOnLeader(stream, consumer string, i int) bool {
	for j, srv := range c.servers {
		if srv.JetStreamIsConsumerLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream, consumer) != (i == j) {
			return false
		}
	}
	return true
}

// freePorts returns n ports free on every address of podAddrs.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100 {
			t.Fatalf("no port free on all of %v", podAddrs)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(podAddrs[0].String(), "0"))
		if err != nil {
			t.Fatalf("listen on %s: %v (the loopback interface must hold 127.0.0.0/8)", podAddrs[0], err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		free := true
		held := []net.Listener{l}
		for _, a := range podAddrs[1:] {
			m, err := net.Listen("tcp", net.JoinHostPort(a.String(), strconv.Itoa(port)))
			if err != nil {
				free = false
				break
			}
			held = append(held, m)
		}
		for _, h := range held {
			h.Close()
		}
		if free && !slices.Contains(ports, port) {
			ports = append(ports, port)
		}
	}
	return ports
}
