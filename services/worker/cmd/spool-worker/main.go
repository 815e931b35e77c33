// Command spool-worker runs a slot per GPU (or SPOOL_WORKER_SLOTS CPU
// slots), each generating one segment at a time through the inference
// library. Configuration is by SPOOL_* variables; -h lists them all.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/services/worker/worker"
)

func main() {
	var cfg worker.Config
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-worker\n\n"+
			"Takes segment tasks from spool.segments.<pool>, runs them on a warm engine per slot, uploads the\n"+
			"tail state and the video fragment and reports TAIL_READY and DONE. SIGTERM drains.\n\n")
		_ = config.Usage(flag.CommandLine.Output(), &cfg)
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := worker.Main(ctx, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "spool-worker: %v\n", err)
		os.Exit(1)
	}
}
