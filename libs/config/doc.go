// Package config loads spool's configuration from SPOOL_* environment
// variables with envconfig.
//
// Each service composes one Config struct from the sub-configs here (NATS,
// Postgres, S3, Service) and loads it with Load. Usage prints every variable
// with its default, which each binary shows on -h. Credentials are held in
// Secret, which never prints its value.
package config
