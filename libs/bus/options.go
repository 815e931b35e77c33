package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Option configures Connect.
type Option func(*options) error

type options struct {
	log           *slog.Logger
	name          string
	reconnectWait time.Duration
	topo          Topology
}

// WithLogger logs connection events (disconnect, reconnect, async errors).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("bus: WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithName names the client for the server's monitoring.
func WithName(name string) Option {
	return func(o *options) error { o.name = name; return nil }
}

// WithReconnectWait sets the pause between reconnect attempts.
func WithReconnectWait(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("bus: reconnect wait %v must be > 0", d)
		}
		o.reconnectWait = d
		return nil
	}
}

// WithTopology replaces the default stream and consumer settings that
// Declare and DeclarePool apply.
func WithTopology(t Topology) Option {
	return func(o *options) error {
		if err := t.validate(); err != nil {
			return err
		}
		o.topo = t
		return nil
	}
}
