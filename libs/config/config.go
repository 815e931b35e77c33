package config

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Prefix is the prefix of every spool environment variable.
const Prefix = "SPOOL"

// NATS locates the NATS server.
type NATS struct {
	URL   string `envconfig:"URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma-separated"`
	Creds string `envconfig:"CREDS" desc:"path to a NATS credentials (.creds) file, for servers in operator (JWT) mode; empty for none"`
	// User and Password authenticate a service as one of the roles of
	// bus.Permissions (dispatcher, stitcher, gateway, worker-<pool>, ...).
	User     string `envconfig:"USER" desc:"NATS user: the service's role (dispatcher, stitcher, gateway, worker-<pool>, client, admin); empty for none"`
	Password Secret `envconfig:"PASSWORD" desc:"the NATS user's password"`
	// PasswordFile holds the password instead (a mounted Secret, a Docker
	// secret); it is read at connect time.
	PasswordFile string `envconfig:"PASSWORD_FILE" desc:"file holding the NATS user's password (trailing newline ignored), instead of SPOOL_NATS_PASSWORD"`
	// TLS: a tls:// URL, or a CA, turns TLS on; a certificate and key
	// authenticate the client to a server that verifies clients.
	TLSCA   string `envconfig:"TLS_CA" desc:"PEM file of the CA that signed the NATS servers' certificates; set, TLS is required"`
	TLSCert string `envconfig:"TLS_CERT" desc:"PEM client certificate, for servers that verify clients (with SPOOL_NATS_TLS_KEY)"`
	TLSKey  string `envconfig:"TLS_KEY" desc:"PEM private key of SPOOL_NATS_TLS_CERT"`
	Name    string `envconfig:"CLIENT_NAME" desc:"client name shown by the server; defaults to the service name"`
	// AckWait is how long a segment task stays with a worker that sends no
	// AckProgress before JetStream redelivers it; every service declaring
	// a pool's consumer must agree on it.
	AckWait time.Duration `envconfig:"ACK_WAIT" default:"30s" desc:"how long a silent worker keeps a segment task before it is redelivered (its redeliveries back off from there)"`
	// Replicas is the replica count of every stream and bucket. Every
	// service declares the topology at start-up, so all must agree on it.
	Replicas int `envconfig:"REPLICAS" default:"1" desc:"replicas of every JetStream stream and KV bucket (1..5; 3 on a three-server cluster); every service must use the same"`
}

// Postgres locates the database, the system's source of truth.
type Postgres struct {
	DSN      Secret `envconfig:"DSN" default:"postgres://spool@127.0.0.1:5432/spool?sslmode=disable" desc:"Postgres connection string (libpq URL or key=value)"`
	MaxConns int32  `envconfig:"MAX_CONNS" default:"8" desc:"maximum connections in the pool"`
}

// S3 locates the object store (MinIO or any S3).
type S3 struct {
	Endpoint  string `envconfig:"ENDPOINT" default:"127.0.0.1:9000" desc:"S3 endpoint host:port, without scheme"`
	AccessKey string `envconfig:"ACCESS_KEY" default:"spool" desc:"S3 access key id"`
	SecretKey Secret `envconfig:"SECRET_KEY" default:"spoolspool" desc:"S3 secret access key"`
	Bucket    string `envconfig:"BUCKET" default:"spool" desc:"bucket holding every object of the system"`
	Region    string `envconfig:"REGION" default:"us-east-1" desc:"S3 region"`
	TLS       bool   `envconfig:"TLS" default:"false" desc:"use https to reach the endpoint"`
}

// Catalog locates the model catalog. Embed it (anonymously) in the Config
// of a service that reads the catalog, so that its variable is
// SPOOL_CATALOG; jobspec.LoadCatalog(File) loads it.
type Catalog struct {
	File string `envconfig:"CATALOG" desc:"model catalog file (YAML, in the format of libs/jobspec/catalog.yaml) that replaces the shipped catalog; empty: the shipped one"`
}

// Service names the running process. Embed it (anonymously) in a
// service Config so that its variables are SPOOL_SERVICE_NAME,
// SPOOL_LOG_LEVEL and SPOOL_METRICS_ADDR.
type Service struct {
	Name     string `envconfig:"SERVICE_NAME" desc:"service name in traces and logs; defaults to the binary's"`
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"log level: debug, info, warn or error"`
	Metrics  string `envconfig:"METRICS_ADDR" desc:"address of the Prometheus /metrics endpoint, e.g. :9464; none when empty (OTLP export is set by OTEL_*)"`
}

// Load fills spec, a pointer to a struct composed of the sub-configs above
// (and any service fields), from SPOOL_* environment variables.
func Load(spec any) error {
	if err := envconfig.Process(Prefix, spec); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Usage writes every variable of spec with its type, default and meaning.
func Usage(w io.Writer, spec any) error {
	tw := tabwriter.NewWriter(w, 1, 4, 2, ' ', 0)
	const format = `Environment variables:
VARIABLE	TYPE	DEFAULT	DESCRIPTION
{{range .}}{{usage_key .}}	{{usage_type .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`
	if err := envconfig.Usagef(Prefix, spec, tw, format); err != nil {
		return fmt.Errorf("config usage: %w", err)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("config usage: %w", err)
	}
	return nil
}
