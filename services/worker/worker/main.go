package worker

import (
	"context"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/service"
)

// Main loads cfg from the environment, finds the GPUs, opens the engines and
// runs the worker until ctx ends (SIGTERM), draining the running segments.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	p, err := service.Start(ctx, "spool-worker", &cfg.Service, service.Parts{NATS: &cfg.NATS, S3: &cfg.S3})
	if err != nil {
		return err
	}
	defer p.Close()
	gpus, err := gpu.Open()
	if err != nil {
		return err
	}
	defer gpus.Close()
	w, err := New(*cfg, p.Bus, p.Blob, gpus, p.Log)
	if err != nil {
		return err
	}
	defer w.Close()
	p.Log.Info("worker running", "id", w.cfg.ID, "pool", cfg.Pool, "models", w.Models(), "slots", len(w.slots), "gpus", len(gpus.GPUs()))
	return w.Run(ctx)
}
