package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/store"
)

// StartupPatience bounds how long Start waits for a dependency (NATS,
// Postgres, MinIO) that is away: restarting, failing over, not yet up. A
// service started meanwhile waits for it, as it would ride out the same
// outage once running, instead of exiting for its orchestrator to restart.
const StartupPatience = 2 * time.Minute

// whileAway runs connect until it succeeds, fails with an error that does
// not say the dependency is away (Away), ctx ends, or StartupPatience has
// passed, backing off from 250 ms to 5 s between tries.
func whileAway(ctx context.Context, log *slog.Logger, part string, connect func() error) error {
	deadline := time.Now().Add(StartupPatience)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := connect()
		if err == nil || !Away(err) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		log.Warn("waiting for a dependency at start-up", "part", part, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// Away reports whether err says a server could not be reached (refused,
// reset, unreachable, timed out, no NATS server), rather than that it
// answered no: a wrong password or a bad setting is not retried.
func Away(err error) bool {
	var op *net.OpError
	switch {
	case err == nil:
		return false
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH):
		return true
	case errors.As(err, &op), store.Starting(err):
		return true
	}
	return false
}
