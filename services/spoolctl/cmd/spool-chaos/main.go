// Command spool-chaos runs spool's chaos suite: every service as its own
// process, a seeded monkey killing, draining, freezing and hanging them
// and taking NATS nodes, Postgres and MinIO away, then checks that every
// video equals the oracle's and prints the faults' recovery times.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spoolvideo/spool/services/spoolctl/chaos"
)

func main() {
	o := chaos.Options{Log: os.Stderr}
	flag.Int64Var(&o.Seed, "seed", 0, "seed of the jobs and of the monkey's schedule; 0 picks one (printed: replay a run with it)")
	flag.IntVar(&o.Jobs, "jobs", chaos.DefaultJobs, "jobs to submit")
	flag.DurationVar(&o.Duration, "duration", chaos.DefaultDuration, "how long the monkey injects faults")
	flag.IntVar(&o.Workers, "workers", chaos.DefaultWorkers, "worker processes kept running (one CPU slot each)")
	flag.BoolVar(&o.Short, "short", false, "the test's form: fewer, smaller jobs and one fault of each kind")
	flag.StringVar(&o.Bin, "bin", "", "directory of spool-dispatcher, spool-stitcher, spool-gateway and spool-worker (default: this binary's)")
	flag.StringVar(&o.Dir, "dir", "", "directory for the parts' data and the processes' logs (default: a temporary one, removed after a pass)")
	out := flag.String("o", "", "write the report as JSON to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-chaos [flags]\n\n"+
			"Runs NATS, Postgres, MinIO, two dispatchers, two stitchers, the gateway and workers as separate processes,\n"+
			"submits jobs by HTTP and NATS, injects seeded faults, then checks every job against render --local and\n"+
			"prints the faults' recovery times. Exits 1 when a check fails. Replay a run: make chaos SEED=<seed>.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.Short && !flagSet("jobs") {
		o.Jobs = 0
	}
	if o.Bin == "" {
		if exe, err := os.Executable(); err == nil {
			o.Bin = filepath.Dir(exe)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := chaos.Run(ctx, o)
	if rep != nil {
		rep.Print(os.Stdout)
		if *out != "" {
			if werr := rep.WriteJSON(*out); werr != nil {
				fmt.Fprintf(os.Stderr, "spool-chaos: %v\n", werr)
			} else {
				fmt.Printf("results: %s\n", *out)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-chaos: %v\n", err)
		os.Exit(1)
	}
	if !rep.OK() {
		os.Exit(1)
	}
}

func flagSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
