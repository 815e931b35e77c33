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

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
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
	var users func(role bus.Role, pool, worker string) (config.NATS, error)
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
		// The stack is the admin of its NATS: it declares the topology
		// the services wait for, and again after a node comes back empty.
		admin := c.NATSConfig()
		admin.Name, admin.Replicas = "spool-devstack", min(natsNodes, 5)
		b, err := bus.Connect(ctx, admin, bus.WithLogger(opts.Logger))
		if err != nil {
			return err
		}
		defer b.Close()
		if err := b.Declare(ctx); err != nil {
			return err
		}
		env = append(env, "SPOOL_NATS_URL="+c.URL(), "SPOOL_NATS_USER="+admin.User, "SPOOL_NATS_PASSWORD="+admin.Password.Reveal(),
			fmt.Sprintf("SPOOL_NATS_REPLICAS=%d", admin.Replicas))
		users = c.NATSUser
	}
	s, err := devstack.Start(ctx, opts)
	if err != nil {
		return err
	}
	t := s.StartupTimes()
	fmt.Fprintf(os.Stderr, "# started in %v (nats %v, postgres %v, minio %v); data in %s\n",
		time.Since(begin).Round(time.Millisecond), t[devstack.PartNATS].Round(time.Millisecond),
		t[devstack.PartPostgres].Round(time.Millisecond), t[devstack.PartMinIO].Round(time.Millisecond), s.Dir())
	if users == nil {
		users = s.NATSUser
	}
	for _, kv := range append(env, s.Env()...) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Printf("export %s='%s'\n", k, v)
	}
	// SPOOL_NATS_USER above is the admin, who may do anything. Each
	// service should run as its own user, with its role's permissions.
	fmt.Println("# each service as its own NATS and MinIO user, with only its role's permissions:")
	for _, svc := range []struct {
		role bus.Role
		bin  string
	}{{bus.RoleDispatcher, "spool-dispatcher"}, {bus.RoleStitcher, "spool-stitcher"}, {bus.RoleGateway, "spool-gateway"},
		{bus.RoleWorker, "spool-worker"}} {
		u, err := users(svc.role, "default", "")
		if err != nil {
			return err
		}
		access, secret, err := s.S3User(string(svc.role))
		if err != nil {
			return err
		}
		fmt.Printf("#   SPOOL_NATS_USER='%s' SPOOL_NATS_PASSWORD='%s' SPOOL_S3_ACCESS_KEY='%s' SPOOL_S3_SECRET_KEY='%s' bin/%s\n",
			u.User, u.Password.Reveal(), access, secret, svc.bin)
	}
	client, err := users(bus.RoleClient, "", "")
	if err != nil {
		return err
	}
	fmt.Printf("# the nats CLI, as the submit-only client:\nexport NATS_URL='%s' NATS_USER='%s' NATS_PASSWORD='%s'\n",
		client.URL, client.User, client.Password.Reveal())
	fmt.Fprintln(os.Stderr, "# press ^C to stop")
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "# stopping")
	return s.Stop()
}
