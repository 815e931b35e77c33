// Command spool-devstack runs real NATS, Postgres and MinIO in the foreground
// for development, prints the SPOOL_* variables that point at them, and stops
// them cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolvideo/spool/libs/devstack"
)

func main() {
	var opts devstack.Options
	var natsNodes int
	flag.StringVar(&opts.Dir, "dir", "", "directory for data and logs, kept across runs (default: a temporary one, removed on exit)")
	flag.IntVar(&opts.NATSPort, "nats-port", 0, "NATS client port (default: a free one)")
	flag.IntVar(&opts.PGPort, "pg-port", 0, "Postgres port (default: a free one; unused when SPOOL_PG_DSN is set)")
	flag.IntVar(&opts.MinIOPort, "minio-port", 0, "MinIO S3 port (default: a free one)")
	flag.IntVar(&natsNodes, "nats-nodes", 0, "run NATS as a cluster of this many nats-server processes (e.g. 3), with as many replicas of every stream (at most 5), instead of the embedded server; built into the tool cache when missing")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-devstack [flags]\n\n"+
			"Runs NATS (embedded, JetStream; or a cluster with -nats-nodes), Postgres and MinIO until\n"+
			"interrupted, and prints the export lines of their SPOOL_* variables. MinIO is built into .spool/bin when missing.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := devstack.Foreground(ctx, opts, natsNodes, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "spool-devstack: %v\n", err)
		os.Exit(1)
	}
}
