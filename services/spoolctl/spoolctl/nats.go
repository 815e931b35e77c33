package spoolctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// runNATS runs `spoolctl nats declare`: the admin's part of NATS, which no
// service's user may do (bus.PermissionsOf).
func runNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "declare" {
		fmt.Fprintf(stderr, "Usage: spoolctl nats declare [--pools a,b] [--keep]\n\n"+
			"Declares the streams, consumers and buckets every service waits for, as the NATS admin\n"+
			"(SPOOL_NATS_URL, SPOOL_NATS_USER=admin, SPOOL_NATS_PASSWORD; SPOOL_NATS_REPLICAS,\n"+
			"SPOOL_NATS_ACK_WAIT as the services have them). With --keep it stays, and declares\n"+
			"again whatever goes missing (a NATS that lost its store), as the chart's topology keeper.\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return ErrUsage
	}
	fs := newFlags("nats declare", "[--pools a,b] [--keep]", stderr)
	pools := fs.String("pools", "", "GPU pools whose consumers (pool-<pool>) to declare too, comma-separated; workers and the dispatcher declare their own otherwise")
	keep := fs.Bool("keep", false, "stay running: check every --every and declare again what is missing, until interrupted")
	every := fs.Duration("every", 10*time.Second, "with --keep, how often to check the topology")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	var cfg struct {
		NATS config.NATS `envconfig:"NATS"`
	}
	if err := config.Load(&cfg); err != nil {
		return err
	}
	if cfg.NATS.Name == "" {
		cfg.NATS.Name = "spoolctl-nats"
	}
	log, err := telemetry.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	b, err := bus.Connect(ctx, cfg.NATS, bus.WithLogger(log))
	if err != nil {
		return err
	}
	defer b.Close()
	var names []string
	for _, p := range strings.Split(*pools, ",") {
		if p = strings.TrimSpace(p); p != "" {
			names = append(names, p)
		}
	}
	declare := func(ctx context.Context) error {
		if err := b.Declare(ctx); err != nil {
			return err
		}
		for _, p := range names {
			if _, err := b.DeclarePool(ctx, p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := declare(ctx); err != nil {
		return fmt.Errorf("spoolctl nats declare: %w", err)
	}
	fmt.Fprintf(stdout, "declared %s, %s, %s, %s, their consumers and the buckets %s and %s", bus.StreamJobs, bus.StreamSegments,
		bus.StreamResults, bus.StreamEvents, bus.BucketWorkers, bus.BucketCancelled)
	if len(names) > 0 {
		fmt.Fprintf(stdout, "; pools %s", strings.Join(names, ", "))
	}
	fmt.Fprintln(stdout)
	if !*keep {
		return nil
	}
	t := time.NewTicker(*every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// Redeclare declares what the Bus declared: idempotent, it
		// changes nothing on a healthy topology.
		cctx, cancel := context.WithTimeout(ctx, *every)
		err := b.Redeclare(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("nats: declaring the topology again", "err", err)
		}
	}
}
