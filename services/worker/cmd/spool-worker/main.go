// Command spool-worker runs a slot per GPU (or SPOOL_WORKER_SLOTS CPU
// slots), each generating one segment at a time through the inference
// library. Configuration is by SPOOL_* variables; -h lists them all.
package main

import (
	"context"

	"github.com/spoolvideo/spool/libs/service"
	"github.com/spoolvideo/spool/services/worker/worker"
)

func main() {
	var cfg worker.Config
	service.Command("spool-worker", "Takes segment tasks from spool.segments.<pool>, runs them on a warm engine per slot, uploads the\n"+
		"tail state and the video fragment and reports TAIL_READY and DONE. SIGTERM drains.", &cfg,
		func(ctx context.Context) error { return worker.Main(ctx, &cfg) })
}
