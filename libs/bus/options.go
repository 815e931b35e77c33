package bus

import (
	"fmt"
	"log/slog"
	"time"
)

// Option configures Connect. Each checks its argument; a bad one fails
// Connect with an error wrapping ErrInvalidOption.
type Option func(*options) error

type options struct {
	log           *slog.Logger
	name          string
	reconnectWait time.Duration
	topo          Topology
}

func defaultOptions() options {
	return options{log: slog.New(slog.DiscardHandler), reconnectWait: 250 * time.Millisecond, topo: DefaultTopology()}
}

// WithLogger logs connection events (disconnect, reconnect, async errors).
// By default they are discarded.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("bus: logger: %w: nil", ErrInvalidOption)
		}
		o.log = l
		return nil
	}
}

// WithName names the client for the server's monitoring. config.NATS.Name,
// when set, takes precedence.
func WithName(name string) Option {
	return func(o *options) error { o.name = name; return nil }
}

// WithReconnectWait sets the pause after each round of reconnect attempts
// over every known server (250 ms by default; a lost node's clients move to
// another at once). The client reconnects for ever.
func WithReconnectWait(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("bus: reconnect wait %v: %w: want > 0", d, ErrInvalidOption)
		}
		o.reconnectWait = d
		return nil
	}
}

// WithTopology replaces the default stream and consumer settings that
// Declare and DeclarePool apply (see NewTopology).
func WithTopology(t Topology) Option {
	return func(o *options) error {
		t, err := t.with(nil)
		if err != nil {
			return err
		}
		o.topo = t
		return nil
	}
}
