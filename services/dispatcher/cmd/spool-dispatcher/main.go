// Command spool-dispatcher turns submitted jobs into segment tasks and
// drives them to their end. Configuration is by SPOOL_* variables; -h lists
// them all.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

func main() {
	var cfg dispatcher.Config
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-dispatcher\n\n"+
			"Consumes spool.jobs.submit and spool.results.*, plans and releases segments, retries,\n"+
			"cancels and reconciles. Postgres is the truth; JetStream the transport.\n\n")
		_ = config.Usage(flag.CommandLine.Output(), &cfg)
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatcher.Main(ctx, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "spool-dispatcher: %v\n", err)
		os.Exit(1)
	}
}
