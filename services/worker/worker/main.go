package worker

import (
	"context"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/service"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// Main loads cfg from the environment, finds the GPUs, opens the engines and
// runs the worker until ctx ends (SIGTERM), draining the running segments.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	var topts []telemetry.Option
	if cfg.Metrics != "" {
		topts = append(topts, telemetry.WithPrometheus())
	}
	p, err := service.Start(ctx, "spool-worker", &cfg.Service, service.Parts{NATS: &cfg.NATS, S3: &cfg.S3}, topts...)
	if err != nil {
		return err
	}
	defer p.Close()
	if cfg.Metrics != "" {
		srv, err := telemetry.ServeMetrics(cfg.Metrics, p.Telemetry.MetricsHandler())
		if err != nil {
			return err
		}
		defer srv.Close()
		p.Log.Info("metrics", "url", "http://"+srv.Addr+"/metrics")
	}
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
	p.Log.Info("worker running", "id", w.cfg.ID, "pool", cfg.Pool, "backend", cfg.Backend, "slots", len(w.slots), "gpus", len(gpus.GPUs()))
	return w.Run(ctx)
}
