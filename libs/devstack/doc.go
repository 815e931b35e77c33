// Package devstack starts the real parts of spool's infrastructure locally,
// for tests and development: an embedded NATS server with JetStream, a
// Postgres cluster made with Debian's server binaries, and a MinIO server
// built from the Go module proxy. There are no mocks.
//
// Start composes three independent components and starts the ones Options
// asks for in parallel; Stack.Add starts more later on the same Stack, and
// Stack.Stop stops them all and removes their temporary data. Env gives the
// SPOOL_* variables that point libs/config at the running parts.
//
// Binaries are looked up as follows. Postgres: the highest version under
// /usr/lib/postgresql/<ver>/bin, then PATH; when SPOOL_PG_DSN is set no
// Postgres is started and that DSN is used. MinIO: $SPOOL_MINIO_BIN, then
// <repo root>/.spool/bin/minio (the repo root is the nearest directory
// holding go.work), then PATH; when it is missing and Options.BuildMinIO is
// set, it is built once with "go install" at MinIOVersion (about 4 minutes
// the first time; concurrent builders wait on a lock file). A missing binary
// is an error that matches ErrMissingBinary and says how to install it.
//
// StartNATSCluster runs a NATS cluster apart from the Stack: three (or
// ClusterOptions.Nodes) real nats-server processes, routed to each other,
// each with JetStream on its own store and sync_interval: always, for tests
// of replicated streams and for a chaos suite that kills, restarts and wipes
// nodes (NATSCluster.Kill, StopNode, Restart, Wipe). Its binary, of
// NATSServerVersion (the version libs/go.mod pins), is $SPOOL_NATS_SERVER_BIN,
// else <tool cache>/nats-server-<version>/nats-server (the tool cache is
// $TOOLCACHE, else $HOME/.cache/spool/tools, as in the Makefile), else
// <repo root>/.spool/bin/nats-server; "make tools" installs it, and
// ClusterOptions.Build builds it when missing (about a minute).
//
// Postgres refuses to run as root: when the effective user is root, initdb
// and postgres run as the "postgres" system user of Debian's package.
package devstack
