// Command spool-stitch-bench measures the stitcher (finalize latency after
// the last segment of a one-hour 720p job, the stitcher's peak RSS, append
// throughput against a plain copy), prints a table and merges "stitch" into
// bench/results.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/services/stitcher/stitchbench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: two minutes of video instead of an hour")
	bin := flag.String("stitcher", "", "spool-stitcher binary; empty builds one")
	sound := flag.Bool("sound", false, "give the job an audio track as long as its video; the figures go to \"stitch_sound\"")
	verbose := flag.Bool("v", false, "log progress to stderr")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-stitch-bench [-short] [-sound] [-o results.json] [-stitcher path] [-v]\n\n"+
			"Starts a devstack, an in-process dispatcher and a spool-stitcher process, feeds it a synthetic\n"+
			"one-hour 720p chain job made of real x264 fragments, and measures finalize latency, the\n"+
			"stitcher's peak RSS and append throughput.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := stitchbench.Options{Short: *short, StitcherBinary: *bin, Sound: *sound}
	if *verbose {
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := stitchbench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-stitch-bench: %v\n", err)
		os.Exit(1)
	}
	name, title := "stitch", fmt.Sprintf("stitch (%d s of 720p, %d segments, %.0f MB, %d parts)", r.VideoS, r.Segments, r.VideoMB, r.Parts)
	if *sound {
		name, title = "stitch_sound", fmt.Sprintf("%s with %.1f MB of AAC", title, r.AudioMB)
	}
	bench.Print(os.Stdout, title, []bench.Row{
		bench.Fig("finalize", r.FinalizeMS, 1, "ms, last DONE → succeeded", "≤ 1000 ms"),
		bench.Fig("peak RSS", r.PeakRSSMB, 1, "MB, stitcher process", "≤ 64 MB"),
		bench.Fig("append", r.AppendMBPerS, 1, "MB/s", ""),
		bench.Fig("plain copy", r.CopyMBPerS, 1, "MB/s", "the same bytes into one object"),
		bench.Fig("append ÷ copy", r.AppendRatio, 3, "", "")})
	if err := bench.Merge(*out, name, r); err != nil {
		fmt.Fprintf(os.Stderr, "spool-stitch-bench: %v\n", err)
		os.Exit(1)
	}
}
