package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// Main loads cfg from the environment, connects to NATS, Postgres and
// MinIO and serves the API until ctx ends.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	if cfg.Name == "" {
		cfg.Name = "spool-gateway"
	}
	log, err := telemetry.NewLogger(os.Stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, cfg.Name)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	if cfg.NATS.Name == "" {
		cfg.NATS.Name = cfg.Name
	}
	b, err := bus.Connect(ctx, cfg.NATS, bus.WithLogger(log))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Declare(ctx); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer st.Close()
	bl, err := blob.New(cfg.S3)
	if err != nil {
		return err
	}
	g, err := New(*cfg, b, st, bl, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("gateway listening", "url", "http://"+ln.Addr().String(), "dev", cfg.Dev)
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
