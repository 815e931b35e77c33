package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds the wait for the embedded server to accept clients.
const natsReadyTimeout = 30 * time.Second

// natsServer is an embedded NATS server with JetStream.
type natsServer struct {
	srv  *server.Server
	opts server.Options // as started, for a reload with more users
	dir  string         // JetStream store
	url  string
}

// startNATS starts an embedded NATS server with JetStream storing under
// dir/nats, on 127.0.0.1:port (0 for a free port). When the stack in dir is
// durable, JetStream syncs every write to disk before acknowledging it
// (sync_interval: always); otherwise every two minutes, the server's
// default. Every client must authenticate as one of auth's users, and with
// tls set the server requires TLS.
func startNATS(ctx context.Context, dir string, port int, auth *natsAuth, tls *natsTLS, log *slog.Logger) (*natsServer, error) {
	store := filepath.Join(dir, "nats")
	if err := os.MkdirAll(store, 0o755); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := server.Options{
		ServerName: "spool-devstack",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   store,
		NoSigs:     true,
		NoLog:      true,
		SyncAlways: durableIn(dir), // the interval stays the default: what "always" sets too
		Users:      auth.serverUsers(),
	}
	if tls != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, tls.server.Clone(), 2
	}
	o := opts
	srv, err := server.NewServer(&o)
	if err != nil {
		return nil, fmt.Errorf("nats: new server: %w", err)
	}
	go srv.Start()
	n := &natsServer{srv: srv, opts: opts, dir: store}
	err = waitFor(ctx, "nats", natsReadyTimeout, nil, func(context.Context) error {
		if !srv.ReadyForConnections(50 * time.Millisecond) {
			return fmt.Errorf("not accepting connections")
		}
		if !srv.JetStreamEnabled() {
			return fmt.Errorf("jetstream not enabled")
		}
		return nil
	})
	if err != nil {
		n.stop()
		return nil, fmt.Errorf("nats: %w", err)
	}
	n.url = srv.ClientURL()
	log.Info("nats ready", "url", n.url, "store", store)
	return n, nil
}

// reload gives the running server auth's users, added since it started.
func (n *natsServer) reload(auth *natsAuth) error {
	o := n.opts
	o.Users = auth.serverUsers()
	if err := n.srv.ReloadOptions(&o); err != nil {
		return fmt.Errorf("nats: reload users: %w", err)
	}
	n.opts = o
	return nil
}

// stop shuts the server down and waits for it. The store stays; the Stack
// removes its directory when it is temporary.
func (n *natsServer) stop() error {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	return nil
}
