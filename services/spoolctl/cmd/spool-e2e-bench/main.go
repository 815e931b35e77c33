// Command spool-e2e-bench measures the whole system (overhead against the
// oracle, the chain's critical path, control-plane throughput), prints
// tables and merges "overhead", "critical_path" and "throughput" into
// bench/results.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/services/spoolctl/e2ebench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: smaller jobs")
	only := flag.String("only", "", "run one benchmark: overhead, critical-path or throughput")
	verbose := flag.Bool("v", false, "log each run's figures to stderr")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the services, NATS and the bench) to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-e2e-bench [-short] [-only overhead|critical-path|throughput] [-o results.json] [-v] [-cpuprofile file]\n\n"+
			"Starts a devstack and every service in this process, then measures the demo job against\n"+
			"render --local, a chain's wall time against its denoising, and control-plane throughput.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := e2ebench.Options{Short: *short}
	if *verbose {
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	stopProfile, err := bench.CPUProfile(*cpuProfile)
	if err == nil {
		err = e2ebench.Report(ctx, os.Stdout, *out, *only, o)
		if perr := stopProfile(); err == nil {
			err = perr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-e2e-bench: %v\n", err)
		os.Exit(1)
	}
}
