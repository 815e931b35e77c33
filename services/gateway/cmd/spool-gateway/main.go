// Command spool-gateway serves spool's HTTP API (OpenAPI at /openapi.yaml)
// and its web dashboard. Configuration is by SPOOL_* variables; -h lists
// them all.
package main

import (
	"context"

	"github.com/spoolvideo/spool/libs/service"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

func main() {
	var cfg gateway.Config
	service.Command("spool-gateway", "Serves the HTTP API: POST /generate, GET /status/{id}, /jobs, /jobs/{id}/events (SSE),\n"+
		"/jobs/{id}/lineage, /download/{id}, /models/info, /health; media uploads at /uploads; the OpenAPI\n"+
		"document at /openapi.yaml; the dashboard at /.", &cfg, func(ctx context.Context) error { return gateway.Main(ctx, &cfg) })
}
