package bus_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
)

func TestNewTopology(t *testing.T) {
	cases := []struct {
		name string
		opts []bus.TopologyOption
		want string // "" for valid, else a part of the error
	}{
		{"defaults", nil, ""},
		{"all set", []bus.TopologyOption{
			bus.WithReplicas(3), bus.WithDuplicates(time.Minute), bus.WithEventsMaxAge(time.Hour),
			bus.WithAckWait(5 * time.Second), bus.WithMaxDeliver(3), bus.WithBackOff(5*time.Second, 10*time.Second, 20*time.Second),
			bus.WithWorkerTTL(10 * time.Second), bus.WithMaxAckPending(64), bus.WithMaxWaiting(2048),
		}, ""},
		{"no backoff", []bus.TopologyOption{bus.WithAckWait(time.Second), bus.WithBackOff()}, ""},
		{"replicas 0", []bus.TopologyOption{bus.WithReplicas(0)}, "replicas 0"},
		{"replicas 7", []bus.TopologyOption{bus.WithReplicas(7)}, "replicas 7"},
		{"tiny dedup window", []bus.TopologyOption{bus.WithDuplicates(time.Millisecond)}, "duplicates window 1ms"},
		{"dedup beyond max age", []bus.TopologyOption{bus.WithEventsMaxAge(time.Minute)}, "exceeds the events max age"},
		{"zero events age", []bus.TopologyOption{bus.WithEventsMaxAge(0)}, "events max age 0s"},
		{"zero ack wait", []bus.TopologyOption{bus.WithAckWait(0)}, "ack wait 0s"},
		{"ack wait unlike first backoff", []bus.TopologyOption{bus.WithAckWait(10 * time.Second)}, "must equal the ack wait"},
		{"max deliver 0", []bus.TopologyOption{bus.WithMaxDeliver(0)}, "max deliver 0"},
		{"more backoffs than deliveries", []bus.TopologyOption{bus.WithMaxDeliver(2)}, "4 backoff delays exceed max deliver 2"},
		{"negative backoff", []bus.TopologyOption{bus.WithBackOff(30*time.Second, -time.Second)}, "backoff delay 1"},
		{"short worker TTL", []bus.TopologyOption{bus.WithWorkerTTL(time.Millisecond)}, "worker TTL"},
		{"max ack pending 0", []bus.TopologyOption{bus.WithMaxAckPending(0)}, "max ack pending 0"},
		{"max waiting 0", []bus.TopologyOption{bus.WithMaxWaiting(0)}, "max waiting 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo, err := bus.NewTopology(c.opts...)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := bus.Connect(t.Context(), badURL(), bus.WithTopology(topo)); errors.Is(err, bus.ErrInvalidOption) {
					t.Fatalf("WithTopology refused a valid topology: %v", err)
				}
				return
			}
			if !errors.Is(err, bus.ErrInvalidOption) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrInvalidOption naming %q", err, c.want)
			}
		})
	}
}

func TestConnectOptions(t *testing.T) {
	bad := bus.DefaultTopology()
	bad.BackOff = []time.Duration{time.Second} // differs from the ack wait
	for name, opt := range map[string]bus.Option{
		"nil logger":          bus.WithLogger(nil),
		"zero reconnect wait": bus.WithReconnectWait(0),
		"bad topology":        bus.WithTopology(bad),
	} {
		if _, err := bus.Connect(t.Context(), badURL(), opt); !errors.Is(err, bus.ErrInvalidOption) {
			t.Errorf("%s: got %v, want ErrInvalidOption", name, err)
		}
	}
}

func TestDefaultTopologyIsValid(t *testing.T) {
	d := bus.DefaultTopology()
	if d.AckWait != 30*time.Second || d.Duplicates != 2*time.Minute || d.Replicas != 1 || d.EventsAge != 24*time.Hour || d.WorkerTTL != 30*time.Second {
		t.Fatalf("defaults: %+v", d)
	}
	got, err := bus.NewTopology()
	if err != nil || got.MaxDeliver != d.MaxDeliver || len(got.BackOff) != len(d.BackOff) {
		t.Fatalf("NewTopology(): %+v %v", got, err)
	}
}

// badURL is a server that does not exist: Connect fails there after its
// options are checked.
func badURL() config.NATS { return config.NATS{URL: "nats://127.0.0.1:1"} }
