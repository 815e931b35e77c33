package stitcher

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/service"
)

// Main loads cfg from the environment, connects to NATS, Postgres and
// MinIO and runs the stitcher until ctx ends.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	if cfg.MemoryMiB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryMiB << 20) // the GC works harder rather than let the part buffers double the heap
	}
	p, err := service.Start(ctx, "spool-stitcher", &cfg.Service, service.Parts{NATS: &cfg.NATS, Postgres: &cfg.Postgres, S3: &cfg.S3})
	if err != nil {
		return err
	}
	defer p.Close()
	s, err := New(*cfg, p.Bus, p.Store, p.Blob, p.Log)
	if err != nil {
		return err
	}
	p.Log.Info("stitcher running", "id", s.cfg.ID, "part_size", cfg.PartSize, "codec", cfg.Codec)
	return s.Run(ctx)
}
