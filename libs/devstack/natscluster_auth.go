package devstack

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
)

// NATSConfig is the client configuration of the cluster (every node's URL)
// as its admin user, who may do anything: declare the topology with it.
func (c *NATSCluster) NATSConfig() config.NATS {
	cfg, _, _ := c.auth.config(c.URL(), "", bus.RoleAdmin, "", "")
	return cfg
}

// NATSUser is the client configuration of role's user on the cluster
// (bus.UserName), with the permissions of bus.PermissionsOf. A user not
// yet in the nodes' configs is added to them, and every running node
// reloads its config (SIGHUP) before NATSUser returns; a node that is down
// reads it when it restarts.
func (c *NATSCluster) NATSUser(role bus.Role, pool, worker string) (config.NATS, error) {
	cfg, added, err := c.auth.config(c.URL(), "", role, pool, worker)
	if err != nil || !added {
		return cfg, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writeConfigs(); err != nil {
		return config.NATS{}, err
	}
	for i, nd := range c.nodes {
		if nd.proc == nil {
			continue
		}
		if err := syscall.Kill(nd.proc.cmd.Process.Pid, syscall.SIGHUP); err != nil {
			return config.NATS{}, fmt.Errorf("devstack: nats node %s: reload: %w", nd.name, err)
		}
		// The reload is asynchronous: wait until the node takes the user.
		err := waitFor(context.Background(), "nats node "+nd.name+" to take user "+cfg.User, 10*time.Second, nil, func(context.Context) error {
			nc, err := nats.Connect(c.NodeURL(i), nats.UserInfo(cfg.User, cfg.Password.Reveal()), nats.NoReconnect())
			if err == nil {
				nc.Close()
			}
			return err
		})
		if err != nil {
			return config.NATS{}, fmt.Errorf("devstack: %w", err)
		}
	}
	return cfg, nil
}

// writeConfigs writes every node's config file with the users of now.
func (c *NATSCluster) writeConfigs() error {
	auth, err := c.auth.conf()
	if err != nil {
		return err
	}
	for _, nd := range c.nodes {
		if err := nd.writeConfig(c.nodes, auth); err != nil {
			return err
		}
	}
	return nil
}
