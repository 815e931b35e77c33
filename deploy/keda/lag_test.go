package keda_test

import (
	"testing"

	"github.com/kedacore/keda/v2/pkg/scalers"
)

// queried is the pod that both Service names reach first.
const queried = 0

// TestScalerCluster runs KEDA's scaler against three servers holding
// spool's streams R3, the way the official NATS chart clusters them
// (routes by pod name, no advertised client URLs) and the way nats-server
// does by default (every server's client URL advertised).
func TestScalerCluster(t *testing.T) {
	for _, tc := range []struct {
		name        string
		noAdvertise bool
		// What KEDA reports when the trigger names the ClusterIP Service
		// instead of the headless one; "" when that works too.
		clusterIPErr string
	}{
		{name: "routes by pod name without advertised URLs", noAdvertise: true, clusterIPErr: "no such host"},
		{name: "advertised client URLs", noAdvertise: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useZone(t, k8sZone(queried))
			c := startCluster(t, len(podAddrs), tc.noAdvertise)
			v := chartValues(t)
			host := v.monitoringHost(t)
			scaler := func(pool string) scalers.Scaler { return newScaler(t, v.trigger(t, host, c.monPort, pool)) }

			t.Run("before the streams exist: an error, no metric", func(t *testing.T) {
				wantError(t, scaler("h100"), "leader node not found for consumer pool-h100")
			})
			cons := c.declare(t, "h100", "l40s")

			t.Run("lag is pending plus ack pending", func(t *testing.T) {
				c.moveConsumerLeader(t, cons["h100"], queried)
				s := scaler("h100")
				checkMetricSpec(t, s)
				wantLag(t, s, cons["h100"], 0, 0)
				// 5 tasks queued and 3 in progress on h100; another pool's
				// tasks count for that pool alone.
				publish(t, c.bus, "h100", 8)
				working := take(t, cons["h100"], 3)
				publish(t, c.bus, "l40s", 4)
				other := take(t, cons["l40s"], 1)
				wantLag(t, s, cons["h100"], 5, 3)
				wantLag(t, scaler("l40s"), cons["l40s"], 3, 1)
				ack(t, working)
				wantLag(t, s, cons["h100"], 5, 0)
				ack(t, append(take(t, cons["h100"], 5), other...))
				wantLag(t, s, cons["h100"], 0, 0)
			})

			t.Run("a pool whose consumer does not exist: an error until it does", func(t *testing.T) {
				// Tasks of a pool the dispatcher has not declared yet wait
				// in the stream; KEDA sees them once the consumer exists.
				publish(t, c.bus, "a100", 2)
				s := scaler("a100")
				for range 2 { // every polling, not only the first
					wantError(t, s, "leader node not found for consumer pool-a100")
				}
				// The same scaler reads the consumer once it exists.
				a100 := c.declare(t, "a100")["a100"]
				wantLag(t, s, a100, 2, 0)
				ack(t, take(t, a100, 2))
			})

			t.Run("the consumer's leader is another server", func(t *testing.T) {
				// A follower's /jsz reports the consumer's num_ack_pending
				// but num_pending 0 (nats-server 2.15.2), so the figure
				// below is right only if read from the leader. Pod 2 is the
				// last route: KEDA passes the other two first.
				c.moveConsumerLeader(t, cons["h100"], 2)
				s := scaler("h100")
				publish(t, c.bus, "h100", 6)
				working := take(t, cons["h100"], 2)
				wantLag(t, s, cons["h100"], 4, 2)
				// The leader moves while KEDA holds the old one's address.
				c.moveConsumerLeader(t, cons["h100"], 1)
				publish(t, c.bus, "h100", 1)
				wantLag(t, s, cons["h100"], 5, 2)
				ack(t, append(working, take(t, cons["h100"], 5)...))
				wantLag(t, s, cons["h100"], 0, 0)
			})

			t.Run("through the ClusterIP Service", func(t *testing.T) {
				s := newScaler(t, v.trigger(t, clusterIPHost, c.monPort, "h100"))
				if tc.clusterIPErr != "" {
					wantError(t, s, tc.clusterIPErr)
					return
				}
				wantLag(t, s, cons["h100"], 0, 0)
			})
		})
	}
}

// TestScalerSingleServer runs KEDA's scaler against one server holding
// spool's streams R1 (nats.replicas: 1).
func TestScalerSingleServer(t *testing.T) {
	useZone(t, k8sZone(queried))
	c := startCluster(t, 1, false)
	v := chartValues(t)
	host := v.monitoringHost(t)

	t.Run("before the streams exist: an error, no metric", func(t *testing.T) {
		wantError(t, newScaler(t, v.trigger(t, host, c.monPort, "h100")), `consumer "pool-h100" not found in stream "SPOOL_SEGMENTS"`)
	})
	cons := c.declare(t, "h100")
	t.Run("lag is pending plus ack pending", func(t *testing.T) {
		s := newScaler(t, v.trigger(t, host, c.monPort, "h100"))
		checkMetricSpec(t, s)
		publish(t, c.bus, "h100", 5)
		working := take(t, cons["h100"], 2)
		wantLag(t, s, cons["h100"], 3, 2)
		ack(t, working)
		wantLag(t, s, cons["h100"], 3, 0)
	})
	t.Run("a pool whose consumer does not exist: an error", func(t *testing.T) {
		wantError(t, newScaler(t, v.trigger(t, host, c.monPort, "a100")), `consumer "pool-a100" not found in stream "SPOOL_SEGMENTS"`)
	})
}
