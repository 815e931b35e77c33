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
		"tail state and the video fragment and reports TAIL_READY and DONE. SIGTERM drains.\n\n"+
		"A segment that makes no progress for SPOOL_WORKER_STALL_TIMEOUT (or passes its deadline) is reported FAILED\n"+
		"(stalled) and cancelled; if its engine does not return within SPOOL_WORKER_STALL_GRACE, the worker drains\n"+
		"its other slots, deregisters and exits with status 75, so that it restarts with a fresh GPU context.", &cfg,
		func(ctx context.Context) error { return worker.Main(ctx, &cfg) })
}
