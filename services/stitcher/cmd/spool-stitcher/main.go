// Command spool-stitcher appends each job's committed segments, in order,
// to its final MP4 (one multipart upload) and its HLS preview, crossfading
// independent segments' overlaps, and marks the job succeeded after the
// last. Configuration is by SPOOL_* variables; -h lists them all.
package main

import (
	"context"

	"github.com/spoolvideo/spool/libs/service"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
)

func main() {
	var cfg stitcher.Config
	service.Command("spool-stitcher", "Consumes DONE results from SPOOL_RESULTS, appends committed segments in order to\n"+
		"jobs/<job>/final.mp4 (streamed multipart) and jobs/<job>/hls/index.m3u8, and marks each job\n"+
		"succeeded after its last segment.", &cfg, func(ctx context.Context) error { return stitcher.Main(ctx, &cfg) })
}
