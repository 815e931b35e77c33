package devstack

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
)

// NATSUser returns the client configuration of role's NATS user on the
// stack's server (bus.UserName: for RoleWorker, pool's user, or worker's
// own when worker is set), adding the user when it is new. A service
// connected with it has exactly the permissions of bus.PermissionsOf. The
// stack must run NATS.
func (s *Stack) NATSUser(role bus.Role, pool, worker string) (config.NATS, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.NATSURL == "" {
		return config.NATS{}, fmt.Errorf("devstack: %w: nats", ErrNotRunning)
	}
	c, added, err := s.auth.config(s.NATSURL, s.tlsCA(), role, pool, worker)
	if err != nil {
		return config.NATS{}, fmt.Errorf("devstack: %w", err)
	}
	if added && s.nats != nil {
		if err := s.nats.reload(s.auth); err != nil {
			return config.NATS{}, fmt.Errorf("devstack: %w", err)
		}
	}
	return c, nil
}

// ServiceEnv is Env with the NATS user of role (NATSUser) in place of
// the admin and, when the stack runs MinIO and role is a service of
// S3Services, that service's own MinIO user (S3User) in place of root: the
// variables of a service process that runs with its own permissions only.
func (s *Stack) ServiceEnv(role bus.Role, pool, worker string) ([]string, error) {
	c, err := s.NATSUser(role, pool, worker)
	if err != nil {
		return nil, err
	}
	var access, secret string
	if s.S3Endpoint != "" && slices.Contains(S3Services, string(role)) {
		if access, secret, err = s.S3User(string(role)); err != nil {
			return nil, err
		}
	}
	env := natsEnv(c)
	for _, kv := range s.Env() {
		switch {
		case strings.HasPrefix(kv, "SPOOL_NATS_"):
		case access != "" && strings.HasPrefix(kv, "SPOOL_S3_ACCESS_KEY="):
			env = append(env, "SPOOL_S3_ACCESS_KEY="+access)
		case access != "" && strings.HasPrefix(kv, "SPOOL_S3_SECRET_KEY="):
			env = append(env, "SPOOL_S3_SECRET_KEY="+secret)
		default:
			env = append(env, kv)
		}
	}
	return env, nil
}

// tlsCA is the CA file clients need, or "" when NATS runs without TLS.
func (s *Stack) tlsCA() string {
	if s.tls == nil {
		return ""
	}
	return s.tls.caFile
}

// declare connects as the admin, once, and declares the topology (the
// streams, the dispatcher's and stitcher's consumers, the buckets) that
// services wait for (bus.Await): the stack is the admin of its NATS. The
// admin's connection stays, so that after a restart of NATS without its
// store it declares the topology again (bus.Redeclare, on reconnecting;
// and Restart calls declare). The caller holds
// s.mu.
func (s *Stack) declare(ctx context.Context) error {
	if s.admin == nil {
		c, _, err := s.auth.config(s.NATSURL, s.tlsCA(), bus.RoleAdmin, "", "")
		if err != nil {
			return err
		}
		c.Name = "spool-devstack"
		b, err := bus.Connect(ctx, c, bus.WithLogger(s.log))
		if err != nil {
			return fmt.Errorf("nats: admin: %w", err)
		}
		s.admin = b
		if err := b.Declare(ctx); err != nil {
			return fmt.Errorf("nats: declare the topology: %w", err)
		}
		return nil
	}
	if err := s.admin.Declare(ctx); err != nil {
		return fmt.Errorf("nats: declare the topology again: %w", err)
	}
	return nil
}
