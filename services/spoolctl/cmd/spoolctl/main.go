// Command spoolctl is spool's command line; `spoolctl -h` lists its
// commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := spoolctl.Main(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, spoolctl.ErrUsage) {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(2)
	}
}
