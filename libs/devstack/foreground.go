package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
)

// Foreground runs what spool-devstack runs: NATS (the embedded server, or
// a cluster of natsNodes nats-server processes declared with as many
// replicas, at most 5), Postgres and MinIO (built when missing), until ctx
// ends. It writes to stdout the export lines of the admin's SPOOL_*
// variables, each service's line with its own NATS and MinIO user, and the
// nats CLI's client credentials; progress goes to stderr. It stops what it
// started before returning.
func Foreground(ctx context.Context, opts Options, natsNodes int, stdout, stderr io.Writer) (err error) {
	opts.NATS, opts.Postgres, opts.MinIO, opts.BuildMinIO = natsNodes == 0, true, true, true
	opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	begin := time.Now()
	var env []string
	var users func(role bus.Role, pool, worker string) (config.NATS, error)
	if natsNodes > 0 {
		co := ClusterOptions{Nodes: natsNodes, Build: true, Logger: opts.Logger}
		if opts.Dir != "" {
			co.Dir = filepath.Join(opts.Dir, "nats-cluster")
		}
		c, err := StartNATSCluster(ctx, co)
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
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	t := s.StartupTimes()
	fmt.Fprintf(stderr, "# started in %v (nats %v, postgres %v, minio %v); data in %s\n",
		time.Since(begin).Round(time.Millisecond), t[PartNATS].Round(time.Millisecond),
		t[PartPostgres].Round(time.Millisecond), t[PartMinIO].Round(time.Millisecond), s.Dir())
	if users == nil {
		users = s.NATSUser
	}
	for _, kv := range append(env, s.Env()...) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(stdout, "export %s='%s'\n", k, v)
	}
	// SPOOL_NATS_USER above is the admin, who may do anything. Each
	// service should run as its own user, with its role's permissions.
	fmt.Fprintln(stdout, "# each service as its own NATS and MinIO user, with only its role's permissions:")
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
		fmt.Fprintf(stdout, "#   SPOOL_NATS_USER='%s' SPOOL_NATS_PASSWORD='%s' SPOOL_S3_ACCESS_KEY='%s' SPOOL_S3_SECRET_KEY='%s' bin/%s\n",
			u.User, u.Password.Reveal(), access, secret, svc.bin)
	}
	client, err := users(bus.RoleClient, "", "")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# the nats CLI, as the submit-only client:\nexport NATS_URL='%s' NATS_USER='%s' NATS_PASSWORD='%s'\n",
		client.URL, client.User, client.Password.Reveal())
	fmt.Fprintln(stderr, "# press ^C to stop")
	<-ctx.Done()
	fmt.Fprintln(stderr, "# stopping")
	return s.Stop()
}
