package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/config"
)

// Bus is a NATS connection with its JetStream context.
type Bus struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *slog.Logger
	topo   Topology
	closed chan struct{}
	heal   healer // what it declared, to declare again (heal.go)
}

// Connect dials cfg.URL: one server's URL, or a comma-separated list of a
// cluster's nodes (nats://h1:4222,nats://h2:4222,nats://h3:4222), of which
// it connects to the first that answers, in random order; the cluster tells
// it of the others. When its server is lost it reconnects at once to
// another, and it keeps trying for ever, pausing the reconnect wait (250 ms
// by default, WithReconnectWait) after each round over every known server.
// Publishes made while disconnected are buffered by the client; a
// JetStream publish whose PubAck does not come back fails when its context
// ends, and its caller retries it with the same Nats-Msg-Id (it may have
// been stored: the retry is then a duplicate, acknowledged as such).
// After each reconnect the Bus declares again, in the background, what it
// declared (see Heal): the server may be back without its store.
func Connect(ctx context.Context, cfg config.NATS, opts ...Option) (*Bus, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: connect: %w", err)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if cfg.Name != "" {
		o.name = cfg.Name
	}
	if cfg.AckWait > 0 { // redeliveries of a task back off from AckWait
		t, err := o.topo.with([]TopologyOption{WithAckWait(cfg.AckWait),
			WithBackOff(cfg.AckWait, cfg.AckWait, 2*cfg.AckWait, 4*cfg.AckWait)})
		if err != nil {
			return nil, fmt.Errorf("bus: SPOOL_NATS_ACK_WAIT %v: %w", cfg.AckWait, err)
		}
		o.topo = t
	}
	if cfg.Replicas != 0 {
		t, err := o.topo.with([]TopologyOption{WithReplicas(cfg.Replicas)})
		if err != nil {
			return nil, fmt.Errorf("bus: SPOOL_NATS_REPLICAS %d: %w", cfg.Replicas, err)
		}
		o.topo = t
	}
	closed := make(chan struct{})
	var self atomic.Pointer[Bus] // for the reconnect handler, set once connected
	nopts := []nats.Option{
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.Name(o.name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.reconnectWait),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: a deliberate close or drain
				o.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			o.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
			if b := self.Load(); b != nil {
				b.afterReconnect() // the server may be back without its store
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			o.log.Error("nats async error", "subject", subject, "err", err)
		}),
	}
	auth, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	nopts = append(nopts, auth...)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 0 {
		nopts = append(nopts, nats.Timeout(time.Until(dl)))
	}
	nc, err := nats.Connect(cfg.URL, nopts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	b := &Bus{nc: nc, js: js, log: o.log, topo: o.topo, closed: closed}
	self.Store(b)
	return b, nil
}

// Conn is the core NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Close drains subscriptions and pending publishes, then closes the
// connection, waiting at most the client's drain timeout.
func (b *Bus) Close() error {
	if b.nc.IsClosed() {
		return nil
	}
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
		return fmt.Errorf("bus: drain: %w", err)
	}
	select {
	case <-b.closed:
	case <-time.After(b.nc.Opts.DrainTimeout + time.Second):
		b.nc.Close()
	}
	return nil
}
