package devstack

import "log/slog"

// Credentials of the MinIO server, matching the defaults of libs/config.
const (
	S3AccessKey = "spool"
	S3SecretKey = "spoolspool"
	S3Bucket    = "spool"
)

// Options says which parts to start and where.
type Options struct {
	// Dir is the parent directory of the parts' data and logs. Empty means
	// a new temporary directory, removed on Stop. A given Dir is kept, and a
	// Postgres cluster already initialised in it is reused.
	Dir string
	// NATS, Postgres and MinIO say which parts to start.
	NATS, Postgres, MinIO bool
	// Durable runs Postgres with its durable defaults (fsync,
	// synchronous_commit and full_page_writes on) and NATS with every
	// JetStream write synced to disk (sync_interval: always, as
	// deploy/nats/nats.conf sets), as production runs them. Off, the test
	// settings trade crash safety for speed: Postgres with those three off,
	// JetStream syncing every two minutes. Benchmarks whose figures are
	// compared with a deployment's run durable. The setting is the stack's:
	// Stack.Add and Stack.Restart keep it. It has no effect on a Postgres
	// given by $SPOOL_PG_DSN.
	Durable bool
	// NATSTLS makes the NATS server require TLS, with a certificate
	// signed by a CA generated for the stack (Stack.NATSUser gives its
	// file as TLSCA). Authorization is on either way.
	NATSTLS bool
	// Collector starts an OpenTelemetry Collector (spool-otelcol, from
	// `make otelcol`) receiving OTLP/HTTP and writing it to Dir/otel.
	Collector bool
	// NATSPort, PGPort, MinIOPort and CollectorPort are the ports to listen
	// on; 0 picks a free one.
	NATSPort, PGPort, MinIOPort, CollectorPort int
	// BuildMinIO allows building the MinIO binary with "go install" when it
	// is missing (about 4 minutes the first time). Off by default: a missing
	// binary is then an error saying how to install it. devstacktest and the
	// spool-devstack command turn it on, since CI starts from a clean tree.
	BuildMinIO bool
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}
