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
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/services/worker/workerbench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: fewer segments and slot counts")
	only := flag.String("only", "", "run one benchmark: busy, overhead or scaling")
	bin := flag.String("bin", "", "directory of the spool-worker and spool-dispatcher binaries for the scaling run (bin/ after make build); empty builds them")
	verbose := flag.Bool("v", false, "log each run's figures to stderr")
	slots := flag.String("slots", "", "scaling: run only these slot counts, comma-separated (e.g. 64,1024)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-worker-bench [-short] [-only busy|overhead|scaling] [-o results.json] [-bin dir] [-slots n,n] [-v]\n\n"+
			"Starts a devstack (embedded NATS, local Postgres, MinIO) and an in-process dispatcher, then measures\n"+
			"the worker: the engine's share of a slot's wall time, the per-segment overhead around a 720p ref\n"+
			"segment, and makespan over ideal for 1..1,024 sim slots across spool-worker processes (up to 8\n"+
			"of 128 slots) fed by a spool-dispatcher process, with each process's CPU.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := workerbench.Options{Short: *short, BinDir: *bin}
	for f := range strings.SplitSeq(*slots, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "spool-worker-bench: -slots %q: want slot counts ≥ 1, comma-separated\n", *slots)
			os.Exit(2)
		}
		o.Slots = append(o.Slots, n)
	}
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
