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
		rows := []bench.Row{}
		for _, n := range ns {
			k := strconv.Itoa(n)
			target := ""
			if n == 64 {
				target = "≥ 0.98"
			}
			rows = append(rows, bench.Fig(fmt.Sprintf("N=%d (%d processes)", n, sc.Processes[k]), sc.Efficiency[k], 4,
				fmt.Sprintf("ideal %.0f ms ÷ makespan %.0f ms", sc.IdealMS[k], sc.MakespanMS[k]), target))
		}
		bench.Print(w, fmt.Sprintf("scaling (sim backend and discard encoder, labelled: 200 ms segments, %d per slot)", sc.PerSlot), rows)
		if err := bench.Merge(out, "scaling", sc); err != nil {
			return err
		}
	}
	return nil
}
