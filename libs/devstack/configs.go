package devstack

import (
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
)

// NATSConfig is the client configuration of the stack's NATS as its admin
// user, who may do anything (NATSUser gives a role's).
func (s *Stack) NATSConfig() config.NATS {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, _ := s.auth.config(s.NATSURL, s.tlsCA(), bus.RoleAdmin, "", "")
	return c
}

// PostgresConfig is the client configuration of the stack's Postgres.
func (s *Stack) PostgresConfig() config.Postgres {
	return config.Postgres{DSN: config.Secret(s.PGDSN), MaxConns: 16}
}

// S3Config is the client configuration of the stack's MinIO.
func (s *Stack) S3Config() config.S3 {
	return config.S3{Endpoint: s.S3Endpoint, AccessKey: s.S3AccessKey, SecretKey: config.Secret(s.S3SecretKey), Bucket: s.S3Bucket}
}
