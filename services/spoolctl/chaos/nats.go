package chaos

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
)

// natsReplicas is what every stream and bucket is declared with
// (SPOOL_NATS_REPLICAS): one copy on each node of the cluster.
const natsReplicas = 3

// natsNodes is what the fleet and the monkey need of NATS: every node's
// URL, and one node at a time killed, wiped and brought back on its
// address. devstack.NATSCluster is it.
type natsNodes interface {
	URL() string
	Nodes() int
	Name(i int) string
	Kill(i int) error
	Wipe(i int) error
	Restart(ctx context.Context, i int) error
	Stop() error
	// NATSConfig is the admin's client configuration; NATSUser a role's.
	NATSConfig() config.NATS
	NATSUser(role bus.Role, pool, worker string) (config.NATS, error)
}

// startNATS starts three nats-server processes forming one cluster, with
// JetStream fsyncing every write (sync_interval: always), under dir/nats;
// nats-server is built into the tool cache when missing.
func startNATS(ctx context.Context, dir string, log *slog.Logger) (natsNodes, error) {
	return devstack.StartNATSCluster(ctx, devstack.ClusterOptions{Dir: filepath.Join(dir, "nats"), Nodes: 3, Build: true, Logger: log})
}
