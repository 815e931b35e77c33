// Package service starts what every spool service process needs: its
// configuration from SPOOL_* variables, the slog logger carrying trace ids,
// OpenTelemetry from the OTEL_* variables, and the connections to NATS,
// Postgres and MinIO it asks for. It keeps each binary's main thin and
// every service's start-up the same.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// Command is a binary's main. -h prints about and every SPOOL_* variable
// of cfg with its default; SIGINT and SIGTERM end run's context; an error
// is printed and exits 1, or with the status its ExitCode method names
// (an error wrapping one that has `ExitCode() int`).
func Command(name, about string, cfg any, run func(ctx context.Context) error) {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s\n\n%s\n\n", name, about)
		_ = config.Usage(flag.CommandLine.Output(), cfg)
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		stop()
		code := 1
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) && coded.ExitCode() > 0 {
			code = coded.ExitCode()
		}
		os.Exit(code)
	}
}

// Parts are the connections a service asks Start for; nil is none.
type Parts struct {
	NATS     *config.NATS
	Postgres *config.Postgres
	S3       *config.S3
}

// Process is a started service's logger, telemetry and connections.
type Process struct {
	Log       *slog.Logger
	Telemetry *telemetry.Telemetry
	Bus       *bus.Bus
	Store     *store.Store
	Blob      *blob.Store // its bucket ensured
	closers   []func()
}

// Start builds the logger and telemetry of the service named by svc (name
// when svc.Name is empty), serves its Prometheus /metrics at svc.Metrics
// when set, and connects the parts. The caller must Close it.
func Start(ctx context.Context, name string, svc *config.Service, parts Parts, topts ...telemetry.Option) (p *Process, err error) {
	if svc.Name == "" {
		svc.Name = name
	}
	p = &Process{}
	defer func() {
		if err != nil {
			p.Close()
			p = nil
		}
	}()
	if p.Log, err = telemetry.NewLogger(os.Stderr, svc.LogLevel); err != nil {
		return p, err
	}
	if svc.Metrics != "" {
		topts = append(topts, telemetry.WithPrometheus())
	}
	if p.Telemetry, err = telemetry.Setup(ctx, svc.Name, topts...); err != nil {
		return p, err
	}
	tel := p.Telemetry
	p.closers = append(p.closers, func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) })
	if svc.Metrics != "" {
		srv, err := telemetry.ServeMetrics(svc.Metrics, tel.MetricsHandler())
		if err != nil {
			return p, err
		}
		p.closers = append(p.closers, func() { _ = srv.Close() })
		p.Log.Info("metrics", "url", "http://"+srv.Addr+"/metrics")
	}
	if parts.NATS != nil {
		if parts.NATS.Name == "" {
			parts.NATS.Name = svc.Name
		}
		err = whileAway(ctx, p.Log, "nats", func() (err error) { p.Bus, err = bus.Connect(ctx, *parts.NATS, bus.WithLogger(p.Log)); return err })
		if err != nil {
			return p, err
		}
		p.closers = append(p.closers, func() { _ = p.Bus.Close() })
	}
	if parts.Postgres != nil {
		err = whileAway(ctx, p.Log, "postgres", func() (err error) {
			p.Store, err = store.Open(ctx, *parts.Postgres, store.WithLogger(p.Log))
			return err
		})
		if err != nil {
			return p, err
		}
		p.closers = append(p.closers, p.Store.Close)
	}
	if parts.S3 != nil {
		if p.Blob, err = blob.New(*parts.S3); err != nil {
			return p, err
		}
		if err = whileAway(ctx, p.Log, "minio", func() error { return p.Blob.EnsureBucket(ctx) }); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Close closes the connections and flushes the telemetry, last opened
// first.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}
