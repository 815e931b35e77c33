// Command spool-stitcher appends each job's committed segments, in order,
// to its final MP4 (one multipart upload) and its HLS preview, crossfading
// independent segments' overlaps, and marks the job succeeded after the
// last. Configuration is by SPOOL_* variables; -h lists them all.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
)

func main() {
	var cfg stitcher.Config
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-stitcher\n\n"+
			"Consumes DONE results from SPOOL_RESULTS, appends committed segments in order to\n"+
			"jobs/<job>/final.mp4 (streamed multipart) and jobs/<job>/hls/index.m3u8, and marks each job\n"+
			"succeeded after its last segment.\n\n")
		_ = config.Usage(flag.CommandLine.Output(), &cfg)
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := stitcher.Main(ctx, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "spool-stitcher: %v\n", err)
		os.Exit(1)
	}
}
