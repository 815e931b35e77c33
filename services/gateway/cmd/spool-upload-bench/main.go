// Command spool-upload-bench measures media uploads (a video of about
// 1 GiB streamed through the gateway and through a presigned PUT, against a
// plain PUT to MinIO; the gateway's peak RSS), prints a table and merges
// "upload" into bench/results.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/services/gateway/uploadbench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: 64 MiB instead of 1 GiB")
	size := flag.Int64("bytes", 0, "the video's size, about, in bytes; 0 for 1 GiB (64 MiB with -short)")
	bin := flag.String("gateway", "", "spool-gateway binary; empty builds one")
	verbose := flag.Bool("v", false, "log progress to stderr")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-upload-bench [-short] [-bytes n] [-o results.json] [-gateway path] [-v]\n\n"+
			"Starts a devstack and a spool-gateway process, makes a video of about 1 GiB (uncompressed frames),\n"+
			"and times its upload as a plain PUT to MinIO, streamed through POST /uploads, and through a\n"+
			"presigned PUT and POST /uploads/{id}/complete; reads the gateway's peak RSS.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := uploadbench.Options{Short: *short, Bytes: *size, GatewayBinary: *bin}
	if *verbose {
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := uploadbench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-upload-bench: %v\n", err)
		os.Exit(1)
	}
	bench.Print(os.Stdout, fmt.Sprintf("upload (a %.0f MB video, %d frames of 640x360)", float64(r.Bytes)/(1<<20), r.Frames), []bench.Row{
		bench.Fig("plain PUT", r.PlainMBPerS, 1, "MB/s, one PUT to MinIO (before and after the flows)", "the reference"),
		bench.Fig("streamed", r.GatewayMBPerS, 1, "MB/s, POST /uploads to its answer (hash, probe)", ""),
		bench.Fig("streamed ÷ plain", r.GatewayRatio, 3, "", ""),
		bench.Fig("presigned", r.PresignedMBPerS, 1, "MB/s, announce + PUT + complete", ""),
		bench.Fig("presigned ÷ plain", r.PresignedRatio, 3, "", ""),
		bench.Fig("  PUT", r.PresignedPutS, 2, "s", ""),
		bench.Fig("  complete", r.CompleteS, 2, "s (copy in MinIO, then hash and probe at once)", ""),
		bench.Fig("probe alone", r.ProbeS, 2, "s (ffprobe counting packets, first frame decoded)", ""),
		bench.Fig("gateway peak RSS", r.PeakRSSMB, 1, "MB (idle "+fmt.Sprintf("%.1f", r.IdleRSSMB)+"), both uploads", "")})
	if err := bench.Merge(*out, "upload", r); err != nil {
		fmt.Fprintf(os.Stderr, "spool-upload-bench: %v\n", err)
		os.Exit(1)
	}
}
