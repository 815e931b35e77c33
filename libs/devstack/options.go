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
