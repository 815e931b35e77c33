// Command spool-worker-bench measures the worker (busy ratio, per-segment
// overhead, scaling across processes) on a devstack with an in-process
// dispatcher, prints tables and merges "busy", "worker_overhead" and
// "scaling" into bench/results.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spoolvideo/spool/services/worker/workerbench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: fewer segments and slot counts")
	only := flag.String("only", "", "run one benchmark: busy, overhead or scaling")
	bin := flag.String("worker", "", "spool-worker binary for the scaling run; empty builds one")
	verbose := flag.Bool("v", false, "log each run's figures to stderr")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-worker-bench [-short] [-only busy|overhead|scaling] [-o results.json] [-worker path]\n\n"+
			"Starts a devstack (embedded NATS, local Postgres, MinIO) and an in-process dispatcher, then measures\n"+
			"the worker: the engine's share of a slot's wall time, the per-segment overhead around a 720p ref\n"+
			"segment, and makespan over ideal for 1..64 sim slots across spool-worker processes.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := workerbench.Options{Short: *short, WorkerBinary: *bin}
	if *verbose {
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := workerbench.Main(ctx, os.Stdout, *out, *only, o); err != nil {
		fmt.Fprintf(os.Stderr, "spool-worker-bench: %v\n", err)
		os.Exit(1)
	}
}
