// Command spool-devstack runs real NATS, Postgres and MinIO in the foreground
// for development, prints the SPOOL_* variables that point at them, and stops
// them cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
	if err := run(ctx, opts, natsNodes); err != nil {
		fmt.Fprintf(os.Stderr, "spool-devstack: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts devstack.Options, natsNodes int) (err error) {
	opts.NATS, opts.Postgres, opts.MinIO, opts.BuildMinIO = natsNodes == 0, true, true, true
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	begin := time.Now()
	var env []string
	if natsNodes > 0 {
		co := devstack.ClusterOptions{Nodes: natsNodes, Build: true, Logger: opts.Logger}
		if opts.Dir != "" {
			co.Dir = filepath.Join(opts.Dir, "nats-cluster")
		}
		c, err := devstack.StartNATSCluster(ctx, co)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, c.Stop()) }()
		env = append(env, "SPOOL_NATS_URL="+c.URL(), fmt.Sprintf("SPOOL_NATS_REPLICAS=%d", min(natsNodes, 5)))
	}
	s, err := devstack.Start(ctx, opts)
	if err != nil {
		return err
	}
	t := s.StartupTimes()
	fmt.Fprintf(os.Stderr, "# started in %v (nats %v, postgres %v, minio %v); data in %s\n",
		time.Since(begin).Round(time.Millisecond), t[devstack.PartNATS].Round(time.Millisecond),
		t[devstack.PartPostgres].Round(time.Millisecond), t[devstack.PartMinIO].Round(time.Millisecond), s.Dir())
	for _, kv := range append(env, s.Env()...) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Printf("export %s='%s'\n", k, v)
	}
	fmt.Fprintln(os.Stderr, "# press ^C to stop")
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "# stopping")
	return s.Stop()
}
