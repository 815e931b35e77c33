// Command spool-audio-bench measures a talking-head job's sound (the
// intake of a one-hour track, a worker's per-segment read of its samples
// against the whole track's, the stitcher's finalize and peak RSS with an
// audio track against without), prints a table and merges "audio" into
// bench/results.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/services/spoolctl/audiobench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: two minutes of audio, 10 reads a segment, the stitch bench's short form")
	cache := flag.String("cache", audiobench.CacheDir(), "directory that keeps the generated source track between runs")
	reads := flag.Int("reads", 0, "reads of each segment's audio; 0 for 50 (10 with -short)")
	noStitch := flag.Bool("no-stitch", false, "leave out the stitcher's finalize without and with audio")
	verbose := flag.Bool("v", false, "log progress to stderr")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-audio-bench [-short] [-o results.json] [-cache dir] [-reads n] [-no-stitch] [-v]\n\n"+
			"Makes a one-hour speech-like MP3 once (cached), takes it in as the dispatcher does on a devstack's\n"+
			"MinIO (PCM at 16 kHz + AAC), times a worker's ranged read of segments' samples against reading the\n"+
			"whole track, and runs the stitch bench without and with an audio track.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := audiobench.Options{Short: *short, CacheDir: *cache, Reads: *reads, NoStitch: *noStitch}
	if *verbose {
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := audiobench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-audio-bench: %v\n", err)
		os.Exit(1)
	}
	bench.Print(os.Stdout, r.Title(), r.Rows())
	if err := bench.Merge(*out, "audio", r); err != nil {
		fmt.Fprintf(os.Stderr, "spool-audio-bench: %v\n", err)
		os.Exit(1)
	}
}
