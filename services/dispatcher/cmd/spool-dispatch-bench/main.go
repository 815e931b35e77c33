// Command spool-dispatch-bench measures the dispatcher (hand-off latency and
// dispatch throughput) on a real NATS and Postgres, prints a table and
// merges "handoff" and "dispatch" into bench/results.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/services/dispatcher/dispatchbench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: fewer segments")
	only := flag.String("only", "", "run one benchmark: handoff or dispatch")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-dispatch-bench [-short] [-only handoff|dispatch] [-o results.json] [-cpuprofile file]\n\n"+
			"Starts a devstack (embedded NATS, local Postgres) and an in-process dispatcher, then measures\n"+
			"the chain hand-off latency and the dispatch throughput; prints tables and merges the figures.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	stopProfile, err := bench.CPUProfile(*profile)
	if err == nil {
		err = run(ctx, *out, *only, dispatchbench.Options{Short: *short})
		if perr := stopProfile(); err == nil {
			err = perr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-dispatch-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, only string, o dispatchbench.Options) error {
	if only == "" || only == "handoff" {
		h, err := dispatchbench.RunHandoff(ctx, o)
		if err != nil {
			return err
		}
		bench.Print(os.Stdout, "handoff (TAIL_READY published → next task in an idle worker's hands)", []bench.Row{
			bench.Fig("p50", h.P50MS, 2, "ms", "≤ 3 ms"), bench.Fig("p99", h.P99MS, 2, "ms", "≤ 15 ms"),
			bench.Fig("samples", float64(h.Samples), 0, "hand-offs", "")})
		if err := bench.Merge(out, "handoff", h); err != nil {
			return err
		}
	}
	if only == "" || only == "dispatch" {
		d, err := dispatchbench.RunDispatch(ctx, o)
		if err != nil {
			return err
		}
		bench.Print(os.Stdout, "dispatch (admission, publish and commit; instant synthetic results)", []bench.Row{
			bench.Fig("throughput", d.SegmentsPerS, 0, "segments/s", "headroom for 5,000/s end to end"),
			bench.Fig("segments", float64(d.Segments), 0, "segments", "")})
		return bench.Merge(out, "dispatch", d)
	}
	return nil
}
