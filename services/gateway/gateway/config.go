// Package gateway is spool's HTTP API: submit jobs, follow them (status,
// Server-Sent Events), cancel them, read their lineage and download their
// video. The OpenAPI 3 document at /openapi.yaml describes every route.
package gateway

import (
	"fmt"
	"time"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/media"
)

// Config is the gateway's configuration, from SPOOL_* variables.
type Config struct {
	config.Service
	config.Catalog
	NATS     config.NATS     `envconfig:"NATS"`
	Postgres config.Postgres `envconfig:"PG"`
	S3       config.S3       `envconfig:"S3"`

	Addr    string `envconfig:"GATEWAY_ADDR" default:":8080" desc:"HTTP listen address"`
	Pools   string `envconfig:"GATEWAY_POOLS" default:"default:ref,ref-talk,sim" desc:"the pools and the models each serves, pool:model,model;pool:model: the dispatcher's SPOOL_DISPATCHER_POOLS, so that a job is refused here as it would be there"`
	MaxBody int64  `envconfig:"GATEWAY_MAX_BODY" default:"1048576" desc:"largest request body, bytes; in a batch, largest job spec"`

	// AdminKey is the bootstrap admin key: the gateway records it (hashed)
	// at start unless its id exists, so that an operator has a first key.
	AdminKey config.Secret `envconfig:"GATEWAY_ADMIN_KEY" desc:"bootstrap admin API key, spool_<id>_<secret> (id: 1..32 of a-z0-9 starting with a letter; secret: ≥ 43 characters of base64url), recorded hashed at start unless its id exists; empty: none (create keys with spoolctl keys)"`
	// URLKey signs the expiring URLs of previews and videos (signed.go).
	URLKey    config.Secret `envconfig:"GATEWAY_URL_KEY" desc:"key (≥ 32 bytes) of the HMAC that signs the expiring preview and download URLs handed to players; required, the same on every gateway replica"`
	URLExpiry time.Duration `envconfig:"GATEWAY_URL_EXPIRY" default:"1h" desc:"how long a signed preview or download URL stays valid (1m..168h)"`

	BatchMax     int   `envconfig:"GATEWAY_BATCH_MAX" default:"1000" desc:"most job specs in one POST /batches"`
	BatchMaxBody int64 `envconfig:"GATEWAY_BATCH_MAX_BODY" default:"16777216" desc:"largest POST /batches body, bytes"`

	Uploads UploadConfig `envconfig:"GATEWAY_UPLOAD"`

	Quotas    // SPOOL_GATEWAY_QUOTA_* (quota.go)
	RateLimit // SPOOL_GATEWAY_RATE, SPOOL_GATEWAY_BURST (ratelimit.go)

	// S3PublicEndpoint and Downloads say how clients outside the cluster
	// reach objects (downloads.go).
	S3PublicEndpoint string `envconfig:"GATEWAY_S3_PUBLIC_ENDPOINT" desc:"scheme://host[:port] by which browsers and clients reach MinIO, e.g. https://media.example.com (a proxy that passes the Host header on): the URLs handed out (video_url, /download's redirect, an upload's upload_url) are presigned for it, with the S3 credentials and region; empty: for SPOOL_S3_ENDPOINT"`
	Downloads        string `envconfig:"GATEWAY_DOWNLOADS" default:"presign" desc:"how /download answers: presign (a redirect to a URL presigned for the public endpoint, else SPOOL_S3_ENDPOINT) or stream (the gateway streams the video itself, Range and HEAD supported, so clients never reach MinIO; presigned uploads then need a public endpoint)"`
}

// UploadConfig bounds media uploads (POST /uploads). Zero values take the
// defaults.
type UploadConfig struct {
	MaxBytes  int64         `envconfig:"MAX_BYTES" default:"2147483648" desc:"largest upload, bytes: a streamed body is refused (413) as soon as it passes it, a presigned upload may announce no more"`
	MaxPixels int64         `envconfig:"MAX_PIXELS" default:"64000000" desc:"largest image or video frame of an upload, width × height (an image is measured from its header)"`
	URLExpiry time.Duration `envconfig:"URL_EXPIRY" default:"1h" desc:"how long a presigned upload URL stays valid; a pending upload not completed by then is abandoned"`
	PartSize  int64         `envconfig:"PART_SIZE" default:"8388608" desc:"part size of a streamed upload into MinIO, bytes (5 MiB..5 GiB): each upload holds two parts in memory"`
	Parallel  int           `envconfig:"PARALLEL" default:"16" desc:"uploads streamed or completed at once; more are answered 503 with Retry-After"`
	Probe     time.Duration `envconfig:"PROBE_TIMEOUT" default:"10m" desc:"how long probing an upload may take"`
}

// withDefaults fills zero values with the defaults.
func (c UploadConfig) withDefaults() UploadConfig {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxBytes, 2<<30)
	def(&c.MaxPixels, media.DefaultMaxPixels)
	def(&c.PartSize, 8<<20)
	if c.URLExpiry == 0 {
		c.URLExpiry = time.Hour
	}
	if c.Parallel == 0 {
		c.Parallel = 16
	}
	if c.Probe == 0 {
		c.Probe = 10 * time.Minute
	}
	return c
}

func (c UploadConfig) validate() error {
	switch {
	case c.MaxBytes < 1:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_UPLOAD_MAX_BYTES %d: want ≥ 1", c.MaxBytes)
	case c.MaxPixels < 1:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_UPLOAD_MAX_PIXELS %d: want ≥ 1", c.MaxPixels)
	case c.URLExpiry < time.Second || c.URLExpiry > 7*24*time.Hour:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_UPLOAD_URL_EXPIRY %s: want 1s..168h (S3's longest)", c.URLExpiry)
	case c.PartSize < blob.MinPartSize || c.PartSize > blob.MaxPartSize:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_UPLOAD_PART_SIZE %d: want %d..%d", c.PartSize, blob.MinPartSize, blob.MaxPartSize)
	case c.Parallel < 1:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_UPLOAD_PARALLEL %d: want ≥ 1", c.Parallel)
	case c.Probe < time.Second:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_UPLOAD_PROBE_TIMEOUT %s: want ≥ 1s", c.Probe)
	}
	return nil
}

// Batch limits of a Config that leaves them zero (one built in code).
const (
	defaultBatchMax     = 1000
	defaultBatchMaxBody = 16 << 20
)

func (c Config) validate() error {
	switch {
	case len(c.URLKey) < minURLKey:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_URL_KEY is %d bytes: want ≥ %d (e.g. openssl rand -base64 48)", len(c.URLKey), minURLKey)
	case c.URLExpiry < time.Minute || c.URLExpiry > 7*24*time.Hour:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_URL_EXPIRY %s: want 1m..168h", c.URLExpiry)
	case c.MaxBody < 1024:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_MAX_BODY %d: want ≥ 1024", c.MaxBody)
	case c.BatchMax < 1 || c.BatchMax > maxBatchCount:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_BATCH_MAX %d: want 1..%d", c.BatchMax, maxBatchCount)
	case c.BatchMaxBody < c.MaxBody:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_BATCH_MAX_BODY %d: want ≥ SPOOL_GATEWAY_MAX_BODY (%d)", c.BatchMaxBody, c.MaxBody)
	case c.Downloads != DownloadsPresign && c.Downloads != DownloadsStream:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_DOWNLOADS %q: want %s or %s", c.Downloads, DownloadsPresign, DownloadsStream)
	}
	if err := c.Quotas.validate(); err != nil {
		return err
	}
	if err := c.RateLimit.validate(); err != nil {
		return err
	}
	if c.AdminKey != "" {
		if _, _, err := apikey.Parse(c.AdminKey.Reveal()); err != nil {
			return fmt.Errorf("gateway: SPOOL_GATEWAY_ADMIN_KEY: %w", err)
		}
	}
	return c.Uploads.validate()
}
