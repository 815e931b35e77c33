package workerbench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/spoolvideo/spool/libs/bench"
)

// Main runs the benchmarks named by only (all when empty), prints their
// tables to w and merges their figures into out.
func Main(ctx context.Context, w io.Writer, out, only string, o Options) error {
	switch only {
	case "", "busy", "overhead", "scaling":
	default:
		return fmt.Errorf("no benchmark %q: want busy, overhead or scaling", only)
	}
	if only == "" || only == "busy" {
		b, err := RunBusy(ctx, o)
		if err != nil {
			return err
		}
		bench.Print(w, "busy (sim backend, labelled: 200 ms segments, full queue; real ffmpeg and uploads)", []bench.Row{
			bench.Fig("busy ratio", b.Ratio, 4, "of slot wall time in the engine", "≥ 0.98"),
			bench.Fig("engine", b.SegmentMS, 1, "ms/segment", ""),
			bench.Fig("before the engine", b.PrepareMS, 2, "ms/segment", "fetch, cancel check, encoder start"),
			bench.Fig("behind the engine", b.FinishMS, 2, "ms/segment", "encode tail, upload, DONE (overlapped)")})
		if err := bench.Merge(out, "busy", b); err != nil {
			return err
		}
	}
	if only == "" || only == "overhead" {
		ov, err := RunOverhead(ctx, o)
		if err != nil {
			return err
		}
		bench.Print(w, "worker overhead per 720p ref chain segment (121 frames)", []bench.Row{
			bench.Fig("engine", ov.EngineMS, 1, "ms/segment", "denoise and decode"),
			bench.Fig("before the engine", ov.PrepareMS, 2, "ms/segment", "fetch, cancel check, tail download, encoder start"),
			bench.Fig("behind the engine", ov.FinishMS, 1, "ms/segment", "encode tail, retime, upload, DONE"),
			bench.Fig("encode phase", ov.EncodeMS, 1, "ms/segment", "DONE timings: decode end → encoder closed"),
			bench.Fig("upload phase", ov.UploadMS, 1, "ms/segment", "DONE timings: the tail's PUT (during the engine) and the fragment's"),
			bench.Fig("worker time ÷ engine", ov.Ratio, 4, "", ""),
			bench.Fig("critical path ÷ engine", ov.CriticalRatio, 4, "", "the chain waits only for this")})
		if err := bench.Merge(out, "worker_overhead", ov); err != nil {
			return err
		}
	}
	if only == "" || only == "scaling" {
		sc, err := RunScaling(ctx, o)
		if err != nil {
			return err
		}
		ns := make([]int, 0, len(sc.Efficiency))
		for k := range sc.Efficiency {
			n, _ := strconv.Atoi(k)
			ns = append(ns, n)
		}
		sort.Ints(ns)
		rows, cpuRows := []bench.Row{}, []bench.Row{}
		for _, n := range ns {
			k := strconv.Itoa(n)
			target := ""
			switch {
			case n == 64 && sc.SegmentMS[k] == 200:
				target = "≥ 0.98"
			case n == 1024:
				target = "≥ 0.97"
			}
			rows = append(rows, bench.Fig(fmt.Sprintf("N=%d (%d processes, %.1f s segments)", n, sc.Processes[k], sc.SegmentMS[k]/1000),
				sc.Efficiency[k], 4, fmt.Sprintf("ideal %.0f ms ÷ makespan %.0f ms; ramp %.0f ms, then %.1f ms between segments",
					sc.IdealMS[k], sc.MakespanMS[k], sc.RampMS[k], sc.GapMS[k]), target))
			c := sc.CPU[k]
			cpuRows = append(cpuRows, bench.Fig(fmt.Sprintf("N=%d", n), c.Dispatcher+c.NATS+c.Postgres+c.Workers, 2, cpuSummary(c), ""))
		}
		bench.Print(w, "scaling (sim backend and discard encoder, labelled: 200 ms segments to 64 slots, 2 s above; efficiency = ideal ÷ makespan)", rows)
		bench.Print(w, "scaling: CPU of the control plane's processes over each run (cores, from /proc; the machine's load shared)", cpuRows)
		if err := bench.Merge(out, "scaling", sc); err != nil {
			return err
		}
	}
	return nil
}
