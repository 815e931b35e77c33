package dispatcher

import (
	"cmp"
	"context"
	"fmt"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/service"
)

// Main loads cfg from the environment, connects everything and runs the
// dispatcher, and its retention janitor unless SPOOL_RETENTION_INTERVAL
// is 0, until ctx ends.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	if _, err := cfg.Retention.Policy(); err != nil {
		return fmt.Errorf("dispatcher: %w", err)
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
	p.Log.Info("dispatcher running", "pools", cfg.Pools, "catalog", cmp.Or(cfg.Catalog.File, "shipped"),
		"retention_jobs", cfg.Retention.Jobs, "retention_uploads", cfg.Retention.Uploads, "retention_interval", cfg.Retention.Interval)
	if cfg.Retention.Interval <= 0 {
		return d.Run(ctx)
	}
	j, err := NewJanitor(cfg.Retention, p.Store, p.Blob, p.Log)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	swept := make(chan struct{})
	go func() { defer close(swept); _ = j.Run(ctx) }()
	err = d.Run(ctx)
	stop()
	<-swept
	return err
}
