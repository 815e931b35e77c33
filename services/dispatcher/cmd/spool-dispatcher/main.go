// Command spool-dispatcher turns submitted jobs into segment tasks and
// drives them to their end. Configuration is by SPOOL_* variables; -h lists
// them all.
package main

import (
	"context"

	"github.com/spoolvideo/spool/libs/service"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

func main() {
	var cfg dispatcher.Config
	service.Command("spool-dispatcher", "Consumes spool.jobs.submit and spool.results.*, plans and releases segments, retries,\n"+
		"cancels and reconciles. Postgres is the truth; JetStream the transport.", &cfg,
		func(ctx context.Context) error { return dispatcher.Main(ctx, &cfg) })
}
