// Command spool-e2e-bench measures the whole system (overhead against the
// oracle, the chain's critical path, control-plane throughput), prints
// tables and merges "overhead", "critical_path" and "throughput" into
// bench/results.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/services/spoolctl/e2ebench"
)

func main() {
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	short := flag.Bool("short", false, "the smoke form: smaller jobs")
	only := flag.String("only", "", "run one benchmark: overhead, critical-path or throughput")
	verbose := flag.Bool("v", false, "log each run's figures to stderr")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the services, NATS and the bench) to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-e2e-bench [-short] [-only overhead|critical-path|throughput] [-o results.json] [-v] [-cpuprofile file]\n\n"+
			"Starts a devstack and every service in this process, then measures the demo job against\n"+
			"render --local, a chain's wall time against its denoising, and control-plane throughput.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o := e2ebench.Options{Short: *short}
	if *verbose {
		o.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "spool-e2e-bench: -cpuprofile: %v\n", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(ctx, *out, *only, o); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintf(os.Stderr, "spool-e2e-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, only string, o e2ebench.Options) error {
	switch only {
	case "", "overhead", "critical-path", "throughput":
	default:
		return fmt.Errorf("no benchmark %q: want overhead, critical-path or throughput", only)
	}
	if only == "" || only == "overhead" {
		r, err := e2ebench.RunOverhead(ctx, o)
		if err != nil {
			return err
		}
		bench.Print(os.Stdout, fmt.Sprintf("overhead (the demo spec, %d frames of 720p: two ref slots and the stitcher vs render --local)", r.Frames),
			[]bench.Row{bench.Fig("distributed ÷ local", r.Ratio, 3, "", "≤ 1.10"), bench.Fig("distributed", r.DistributedMS/1000, 2, "s", ""),
				bench.Fig("local", r.LocalMS/1000, 2, "s", "")})
		if err := bench.Merge(out, "overhead", r); err != nil {
			return err
		}
	}
	if only == "" || only == "critical-path" {
		r, err := e2ebench.RunCriticalPath(ctx, o)
		if err != nil {
			return err
		}
		st, hd := r.Stress, r.HD
		rows := []bench.Row{bench.Fig("wall ÷ Σ denoise", r.Ratio, 4, "", "≤ 1.02"), bench.Fig("wall", r.WallMS, 0, "ms", ""),
			bench.Fig("Σ denoise", r.DenoiseMS, 0, "ms", ""),
			bench.Fig(fmt.Sprintf("stress: %.0f ms segments", st.SegmentMS), st.Ratio, 4, "", ""),
			bench.Fig("stress: wall − Σ denoise", st.WallMS-st.DenoiseMS, 0, "ms", ""),
			bench.Fig("720p windows: wall ÷ Σ denoise", hd.Ratio, 4, "", fmt.Sprintf("each hand-off moves a %.1f MB tail", float64(hd.TailBytes)/1e6)),
			bench.Fig("720p windows: wall − Σ denoise", hd.WallMS-hd.DenoiseMS, 0, "ms", fmt.Sprintf("over %d hand-offs", hd.Segments-1))}
		for _, c := range []*e2ebench.CriticalPath{&r, st, hd} {
			for _, why := range c.Retries {
				fmt.Fprintf(os.Stderr, "critical-path: %.0f ms segments, %.1f MB tails: retried %s\n", c.SegmentMS, float64(c.TailBytes)/1e6, why)
			}
			if c.HandoffMS > 0 {
				rows = append(rows, bench.Fig(fmt.Sprintf("hand-off, %.0f ms segments, %.1f MB tails", c.SegmentMS, float64(c.TailBytes)/1e6),
					c.HandoffMS, 1, "ms", "median: denoise end → next task in the stream"))
			}
		}
		bench.Print(os.Stdout, fmt.Sprintf("critical-path (sim backend, labelled: chains of %d segments of %.0f ms denoising, the ref model's 720p segment, "+
			"and of %d of %.0f ms, in 64×64 windows; and of %d in 720p windows; real ffmpeg and stitcher)",
			r.Segments, r.SegmentMS, st.Segments, st.SegmentMS, hd.Segments), rows)
		if err := bench.Merge(out, "critical_path", r); err != nil {
			return err
		}
	}
	if only == "" || only == "throughput" {
		r, err := e2ebench.RunThroughput(ctx, o)
		if err != nil {
			return err
		}
		c := r.CPU
		perSeg := func(cores float64) float64 { return cores / r.SegmentsPerS * 1e6 }
		bench.Print(os.Stdout, fmt.Sprintf("throughput (sim at 0 ms and the discard encoder, labelled: %d slots, one worker, window %d; %d CPUs)", r.Slots, r.Window, c.CPUs),
			[]bench.Row{bench.Fig("DONE committed", r.SegmentsPerS, 0, "segments/s", "≥ 5,000/s"),
				bench.Fig("segments", float64(r.Segments), 0, "segments", ""),
				bench.Fig("CPU: services and NATS", perSeg(c.SelfCores), 0, "µs/segment", fmt.Sprintf("%.2f cores", c.SelfCores)),
				bench.Fig("CPU: Postgres and the rest", perSeg(c.OtherCores), 0, "µs/segment", fmt.Sprintf("%.2f cores", c.OtherCores)),
				bench.Fig("CPU: idle", c.IdleCores, 2, "cores", "")})
		return bench.Merge(out, "throughput", r)
	}
	return nil
}
