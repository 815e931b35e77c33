// Command spool-load-bench publishes bursts of jobs at once to the whole
// system (dispatcher, stitcher, gateway and a worker as child processes
// from bin/), measures wall time, peak RSS, /status latency and tenant
// fairness, checks that every job succeeded, prints a table and merges
// "load" into bench/results.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/services/spoolctl/loadbench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: one burst of 100 jobs")
	jobs := flag.String("jobs", "", "burst sizes, comma-separated, each on a fresh stack (default 250,1000; 100 with -short)")
	segments := flag.Int("segments", 0, "segments per job, a chain (default 2)")
	slots := flag.Int("slots", 0, "the worker's slots (default 8)")
	stepMS := flag.Int("step-ms", 0, "the sim backend's time per denoising step, ms (default 5)")
	rate := flag.Int("rate", 0, "GET /status requests per second through the run (default 50)")
	bin := flag.String("bin", "bin", "directory of the services' binaries (make build)")
	verbose := flag.Bool("v", false, "log progress to stderr and keep the services' logs")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (NATS, the load and the checks; not the services) to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-load-bench [-short] [-jobs 250,1000] [-segments n] [-slots n] [-step-ms n] [-rate n] [-bin dir] [-o results.json] [-v] [-cpuprofile file]\n\n"+
			"Starts a devstack and the dispatcher, stitcher, gateway and one sim worker as processes from -bin,\n"+
			"publishes each burst of jobs at once (half tenant A's, then tenant B's), polls GET /status of random\n"+
			"jobs, and reports the wall time, each service's peak RSS, the /status p50/p99 and the tenants' fairness.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := loadbench.Options{Short: *short, Segments: *segments, Slots: *slots, StepMS: *stepMS, PollRate: *rate, BinDir: *bin}
	for _, s := range strings.FieldsFunc(*jobs, func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "spool-load-bench: -jobs %q: want comma-separated burst sizes\n", *jobs)
			os.Exit(2)
		}
		o.Jobs = append(o.Jobs, n)
	}
	if *verbose {
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	stopProfile, err := bench.CPUProfile(*cpuProfile)
	if err == nil {
		var l loadbench.Load
		l, err = loadbench.Run(ctx, o)
		if perr := stopProfile(); err == nil {
			err = perr
		}
		if err == nil {
			bench.Print(os.Stdout, l.Title(), l.Rows())
			err = bench.Merge(*out, "load", l)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-load-bench: %v\n", err)
		os.Exit(1)
	}
}
