// Command spool-python-bench measures the python backend (skyreels_df.py)
// through the worker's path and directly in Python, and merges its figures
// into bench/results.json under "python" (or -key, e.g. "gpu").
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/libs/infer/pythonbench"
)

func main() {
	var o pythonbench.Options
	out := flag.String("o", "bench/results.json", "results file to merge the figures into")
	key := flag.String("key", "python", "the results file's key for the figures (gpu for the GPU check)")
	short := flag.Bool("short", false, "the smoke form: 2 windows per path, one round")
	flag.StringVar(&o.Root, "root", ".", "the repository root")
	flag.StringVar(&o.Python, "python", "", "interpreter of the direct runs (default: .spool/venv/bin/python)")
	flag.StringVar(&o.PluginDir, "plugin-dir", "", "where libspool_infer_python.so is (default: libs/infer/build)")
	flag.StringVar(&o.ModelDir, "model-dir", "", "the diffusers model folder (default: .spool/models/skyreels-v2-df-tiny)")
	flag.StringVar(&o.Model, "model", "", "the model's catalog name (default: skyreels-v2-df-tiny)")
	flag.StringVar(&o.Params, "params", "", "more engine parameters, k=v;k=v (e.g. init=random), given to bench_direct.py too")
	flag.StringVar(&o.ExtraPath, "extra-path", "", "more module folders for both paths, ':'-separated (e.g. carried wheels)")
	flag.IntVar(&o.Device, "device", -1, "CUDA device index; -1: the CPU, deterministic as CPU workers are")
	flag.IntVar(&o.Width, "width", 0, "pixels (default 128)")
	flag.IntVar(&o.Height, "height", 0, "pixels (default 64)")
	flag.IntVar(&o.Frames, "frames", 0, "frames per window (default 17)")
	flag.IntVar(&o.Steps, "steps", 0, "denoise steps (default 4)")
	flag.Float64Var(&o.Shift, "shift", 0, "flow shift (default 8)")
	flag.IntVar(&o.Windows, "windows", 0, "timed windows per path and round (default 5)")
	flag.IntVar(&o.Rounds, "rounds", 0, "rounds of both paths (default 2)")
	flag.IntVar(&o.Slots, "slots", 0, "engines opened, each load timed (default 2)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: spool-python-bench [flags]\n\n"+
			"Times SkyReels-V2 diffusion-forcing windows of skyreels_df.py through the worker's path\n"+
			"(Go → C engine → embedded Python) and directly in Python (bench_direct.py), in alternating\n"+
			"rounds, and the engine's open (model load) per slot; prints a table and merges the figures.\n"+
			"Default: the tiny pipeline (make tiny-model) on the CPU.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *short {
		o.Windows, o.Rounds = 2, 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	f, err := pythonbench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "spool-python-bench: %v\n", err)
		os.Exit(1)
	}
	where := "CPU, deterministic"
	target := "≥ 0.95"
	if f.Device >= 0 {
		where, target = fmt.Sprintf("GPU %d", f.Device), "≥ 0.98"
	}
	rows := []bench.Row{
		bench.Fig("worker path", f.WorkerS, 3, "s/window", ""),
		bench.Fig("direct", f.DirectS, 3, "s/window", ""),
		bench.Fig("ratio (direct ÷ worker)", f.Ratio, 3, "", target),
		bench.Fig("worker path per step", f.StepS, 4, "s/step (decode included)", ""),
		bench.Fig("direct per denoise step", f.DirectStepS, 4, "s/step (decode excluded)", ""),
		bench.Fig("direct decode", f.DirectDecodeS, 3, "s/window", ""),
		bench.Fig("direct load", f.DirectLoadS, 2, "s", ""),
	}
	for i, s := range f.OpenS {
		rows = append(rows, bench.Fig(fmt.Sprintf("open (model load), slot %d", i), s, 2, "s", ""))
	}
	if f.Device >= 0 {
		rows = append(rows, bench.Fig("GPU utilisation (NVML)", f.GPUUtilPct, 1, "%", ""),
			bench.Fig("GPU peak memory used (NVML)", f.GPUPeakMemMiB, 0, "MiB", ""),
			bench.Fig("direct peak allocated (torch)", f.DirectPeakMemMiB, 0, "MiB", ""))
	}
	bench.Print(os.Stdout, fmt.Sprintf("%s (%s: %dx%d, %d frames, %d steps; %s)", *key, f.Model, f.Width, f.Height, f.Frames, f.Steps, where), rows)
	if err := bench.Merge(*out, *key, f); err != nil {
		fmt.Fprintf(os.Stderr, "spool-python-bench: %v\n", err)
		os.Exit(1)
	}
}
