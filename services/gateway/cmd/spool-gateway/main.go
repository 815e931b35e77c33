// Command spool-gateway serves spool's HTTP API (OpenAPI at /openapi.yaml).
// Configuration is by SPOOL_* variables; -h lists them all.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

func main() {
	var cfg gateway.Config
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-gateway\n\n"+
			"Serves the HTTP API: POST /generate, GET /status/{id}, /jobs, /jobs/{id}/events (SSE),\n"+
			"/jobs/{id}/lineage, /download/{id}, /models/info, /health; the OpenAPI document at /openapi.yaml.\n\n")
		_ = config.Usage(flag.CommandLine.Output(), &cfg)
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := gateway.Main(ctx, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "spool-gateway: %v\n", err)
		os.Exit(1)
	}
}
