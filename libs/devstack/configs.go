package devstack

import "github.com/spoolvideo/spool/libs/config"

// NATSConfig is the client configuration of the stack's NATS.
func (s *Stack) NATSConfig() config.NATS { return config.NATS{URL: s.NATSURL} }

// PostgresConfig is the client configuration of the stack's Postgres.
func (s *Stack) PostgresConfig() config.Postgres {
	return config.Postgres{DSN: config.Secret(s.PGDSN), MaxConns: 16}
}

// S3Config is the client configuration of the stack's MinIO.
func (s *Stack) S3Config() config.S3 {
	return config.S3{Endpoint: s.S3Endpoint, AccessKey: s.S3AccessKey, SecretKey: config.Secret(s.S3SecretKey), Bucket: s.S3Bucket}
}
