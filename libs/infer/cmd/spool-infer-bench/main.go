// Command spool-infer-bench measures the inference library and merges its
// figures into bench/results.json under "infer".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/libs/infer/inferbench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the \"infer\" figures into")
	short := flag.Bool("short", false, "the smoke form: small sizes, one repetition")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-infer-bench [-short] [-o results.json]\n\n"+
			"Measures the ref backend at 720p (121 frames, 30 steps), the Go↔C frame callback and the\n"+
			"sim backend's overhead per call; prints a table and merges the figures into the results file.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	f, err := inferbench.Run(ctx, inferbench.Options{Short: *short})
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-infer-bench: %v\n", err)
		os.Exit(1)
	}
	title := "infer (ref backend at 1280x720, 121 frames, 30 steps)"
	if *short {
		title = "infer (smoke form: ref at 320x180, 17 frames, 4 steps)"
	}
	bench.Print(os.Stdout, title, []bench.Row{
		bench.Fig("ref frames/s", f.Ref720pFramesPerS, 1, "frames/s", ""),
		bench.Fig("ref denoise", f.Ref720pDenoiseS, 3, "s/segment", ""),
		bench.Fig("ref decode", f.Ref720pDecodeS, 3, "s/segment", ""),
		bench.Fig(fmt.Sprintf("ref frames/s, %d threads", f.Ref720pThreads), f.Ref720pFramesPerSThread, 1, "frames/s", ""),
		bench.Fig("frame callback", f.CallbackNSPerFrame, 0, "ns/frame", ""),
		bench.Fig("callback overhead", f.CallbackOverheadPct, 4, "% of decode", "< 1%"),
		bench.Fig("callback allocations", f.CallbackAllocs, 3, "allocs/frame (Go side)", "0"),
		bench.Fig("sim call", f.SimCallUS, 1, "µs/call", ""),
	})
	if err := bench.Merge(*out, "infer", f); err != nil {
		fmt.Fprintf(os.Stderr, "spool-infer-bench: %v\n", err)
		os.Exit(1)
	}
}
