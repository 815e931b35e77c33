package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/service"
)

// Main loads cfg from the environment, connects to NATS, Postgres and
// MinIO and serves the API until ctx ends.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	p, err := service.Start(ctx, "spool-gateway", &cfg.Service, service.Parts{NATS: &cfg.NATS, Postgres: &cfg.Postgres, S3: &cfg.S3})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Bus.Await(ctx); err != nil {
		return err
	}
	g, err := New(*cfg, p.Bus, p.Store, p.Blob, p.Log)
	if err != nil {
		return err
	}
	if err := g.EnsureAdminKey(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	p.Log.Info("gateway listening", "url", "http://"+ln.Addr().String())
	return Serve(ctx, ln, g.Handler())
}

// Serve serves h on ln until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
