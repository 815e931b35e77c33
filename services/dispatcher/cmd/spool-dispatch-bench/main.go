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
			"the chain hand-off latency and the dispatch throughput, each on the test settings and on a durable\n"+
			"stack (Postgres's durable defaults, JetStream syncing every write); prints tables and merges the figures.\n\nFlags:\n")
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
		d := h.Durable
		bench.Print(os.Stdout, "handoff (TAIL_READY published → next task in an idle worker's hands; on each stack)", []bench.Row{
			bench.Fig("p50, test settings", h.P50MS, 2, "ms", "≤ 3 ms"), bench.Fig("p99, test settings", h.P99MS, 2, "ms", "≤ 15 ms"),
			bench.Fig("p50, durable", d.P50MS, 2, "ms", "≤ 3 ms"), bench.Fig("p99, durable", d.P99MS, 2, "ms", "≤ 15 ms"),
			bench.Fig("p50 durable ÷ test settings", d.P50MS/h.P50MS, 2, "", ""),
			bench.Fig("samples", float64(h.Samples), 0, "hand-offs per stack", "")})
		if err := bench.Merge(out, "handoff", h); err != nil {
			return err
		}
	}
	if only == "" || only == "dispatch" {
		d, err := dispatchbench.RunDispatch(ctx, o)
		if err != nil {
			return err
		}
		dd := d.Durable
		bench.Print(os.Stdout, "dispatch (admission, publish and commit; instant synthetic results; on each stack)", []bench.Row{
			bench.Fig("throughput, test settings", d.SegmentsPerS, 0, "segments/s", "headroom for 5,000/s end to end"),
			bench.Fig("throughput, durable", dd.SegmentsPerS, 0, "segments/s", ""),
			bench.Fig("durable ÷ test settings", dd.SegmentsPerS/d.SegmentsPerS, 2, "", ""),
			bench.Fig("segments", float64(d.Segments), 0, "segments per stack", "")})
		return bench.Merge(out, "dispatch", d)
	}
	return nil
}
