package worker

import (
	"context"
	"os"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// Main loads cfg from the environment, finds the GPUs, opens the engines and
// runs the worker until ctx ends (SIGTERM), draining the running segments.
func Main(ctx context.Context, cfg *Config) error {
	if err := config.Load(cfg); err != nil {
		return err
	}
	if cfg.Name == "" {
		cfg.Name = "spool-worker"
	}
	log, err := telemetry.NewLogger(os.Stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	var topts []telemetry.Option
	if cfg.Metrics != "" {
		topts = append(topts, telemetry.WithPrometheus())
	}
	tel, err := telemetry.Setup(ctx, cfg.Name, topts...)
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	if cfg.Metrics != "" {
		srv, err := telemetry.ServeMetrics(cfg.Metrics, tel.MetricsHandler())
		if err != nil {
			return err
		}
		defer srv.Close()
		log.Info("metrics", "url", "http://"+srv.Addr+"/metrics")
	}
	gpus, err := gpu.Open()
	if err != nil {
		return err
	}
	defer gpus.Close()
	if cfg.NATS.Name == "" {
		cfg.NATS.Name = cfg.Name
	}
	b, err := bus.Connect(ctx, cfg.NATS, bus.WithLogger(log))
	if err != nil {
		return err
	}
	defer b.Close()
	bl, err := blob.New(cfg.S3)
	if err != nil {
		return err
	}
	if err := bl.EnsureBucket(ctx); err != nil {
		return err
	}
	w, err := New(*cfg, b, bl, gpus, log)
	if err != nil {
		return err
	}
	defer w.Close()
	log.Info("worker running", "id", w.cfg.ID, "pool", cfg.Pool, "backend", cfg.Backend, "slots", len(w.slots), "gpus", len(gpus.GPUs()))
	return w.Run(ctx)
}
