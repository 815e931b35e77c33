package stitcher

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// Main loads cfg from the environment, connects to NATS, Postgres and
// MinIO and runs the stitcher until ctx ends.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	if cfg.Name == "" {
		cfg.Name = "spool-stitcher"
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
	st, err := store.Open(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer st.Close()
	bl, err := blob.New(cfg.S3)
	if err != nil {
		return err
	}
	if err := bl.EnsureBucket(ctx); err != nil {
		return err
	}
	if cfg.MemoryMiB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryMiB << 20) // the GC works harder rather than let the part buffers double the heap
	}
	s, err := New(*cfg, b, st, bl, log)
	if err != nil {
		return err
	}
	log.Info("stitcher running", "id", s.cfg.ID, "part_size", cfg.PartSize, "codec", cfg.Codec)
	return s.Run(ctx)
}
