package dispatcher

import (
	"cmp"
	"context"
	"fmt"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/service"
)

// Main loads cfg from the environment, connects everything and runs the
// dispatcher until ctx ends.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	p, err := service.Start(ctx, "spool-dispatcher", &cfg.Service, service.Parts{NATS: &cfg.NATS, Postgres: &cfg.Postgres, S3: &cfg.S3})
	if err != nil {
		return err
	}
	defer p.Close()
	d, err := New(ctx, *cfg, p.Bus, p.Store, p.Log, WithBlob(p.Blob))
	if err != nil {
		return fmt.Errorf("dispatcher: %w", err)
	}
	p.Log.Info("dispatcher running", "pools", cfg.Pools, "catalog", cmp.Or(cfg.Catalog.File, "shipped"))
	return d.Run(ctx)
}
