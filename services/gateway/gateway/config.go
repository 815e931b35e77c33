// Package gateway is spool's HTTP API: submit jobs, follow them (status,
// Server-Sent Events), cancel them, read their lineage and download their
// video. The OpenAPI 3 document at /openapi.yaml describes every route.
package gateway

import (
	"fmt"

	"github.com/spoolvideo/spool/libs/config"
)

// Config is the gateway's configuration, from SPOOL_* variables.
type Config struct {
	config.Service
	config.Catalog
	NATS     config.NATS     `envconfig:"NATS"`
	Postgres config.Postgres `envconfig:"PG"`
	S3       config.S3       `envconfig:"S3"`

	Addr    string        `envconfig:"GATEWAY_ADDR" default:":8080" desc:"HTTP listen address"`
	Token   config.Secret `envconfig:"GATEWAY_TOKEN" desc:"bearer token every request but /health and /openapi.yaml must carry"`
	Dev     bool          `envconfig:"GATEWAY_DEV" default:"false" desc:"development mode: no token is required"`
	Pools   string        `envconfig:"GATEWAY_POOLS" default:"default:ref,sim" desc:"the pools and the models each serves, pool:model,model;pool:model: the dispatcher's SPOOL_DISPATCHER_POOLS, so that a job is refused here as it would be there"`
	MaxBody int64         `envconfig:"GATEWAY_MAX_BODY" default:"1048576" desc:"largest request body, bytes; in a batch, largest job spec"`

	BatchMax     int   `envconfig:"GATEWAY_BATCH_MAX" default:"1000" desc:"most job specs in one POST /batches"`
	BatchMaxBody int64 `envconfig:"GATEWAY_BATCH_MAX_BODY" default:"16777216" desc:"largest POST /batches body, bytes"`
}

// Batch limits of a Config that leaves them zero (one built in code).
const (
	defaultBatchMax     = 1000
	defaultBatchMaxBody = 16 << 20
)

func (c Config) validate() error {
	switch {
	case !c.Dev && c.Token == "":
		return fmt.Errorf("gateway: SPOOL_GATEWAY_TOKEN is empty: set one, or SPOOL_GATEWAY_DEV=true for development")
	case c.MaxBody < 1024:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_MAX_BODY %d: want ≥ 1024", c.MaxBody)
	case c.BatchMax < 1 || c.BatchMax > maxBatchCount:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_BATCH_MAX %d: want 1..%d", c.BatchMax, maxBatchCount)
	case c.BatchMaxBody < c.MaxBody:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_BATCH_MAX_BODY %d: want ≥ SPOOL_GATEWAY_MAX_BODY (%d)", c.BatchMaxBody, c.MaxBody)
	}
	return nil
}
