package dispatcher

import (
	"context"
	"fmt"
	"os"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// Main loads cfg from the environment, connects everything and runs the
// dispatcher until ctx ends.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	if cfg.Name == "" {
		cfg.Name = "spool-dispatcher"
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
	s, err := store.Open(ctx, cfg.Postgres, store.WithLogger(log))
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := New(ctx, *cfg, b, s, log)
	if err != nil {
		return fmt.Errorf("dispatcher: %w", err)
	}
	log.Info("dispatcher running", "pools", cfg.Pools)
	return d.Run(ctx)
}
