package e2ebench

import (
	"context"
	"fmt"
	"io"

	"github.com/spoolvideo/spool/libs/bench"
)

// Report runs the benchmarks only names ("" for all three: overhead,
// critical-path, throughput), prints a table of each to w and merges its
// figures into the results file at out. Attempts a critical-path chain had
// to retry are listed under its table, with why.
func Report(ctx context.Context, w io.Writer, out, only string, o Options) error {
	switch only {
	case "", "overhead", "critical-path", "throughput":
	default:
		return fmt.Errorf("no benchmark %q: want overhead, critical-path or throughput", only)
	}
	if only == "" || only == "overhead" {
		r, err := RunOverhead(ctx, o)
		if err != nil {
			return err
		}
		bench.Print(w, fmt.Sprintf("overhead (the demo spec, %d frames of 720p: two ref slots and the stitcher vs render --local)", r.Frames),
			[]bench.Row{bench.Fig("distributed ÷ local", r.Ratio, 3, "", "≤ 1.10"), bench.Fig("distributed", r.DistributedMS/1000, 2, "s", ""),
				bench.Fig("local", r.LocalMS/1000, 2, "s", "")})
		if err := bench.Merge(out, "overhead", r); err != nil {
			return err
		}
	}
	if only == "" || only == "critical-path" {
		r, err := RunCriticalPath(ctx, o)
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
		var retried []string
		for _, c := range []*CriticalPath{&r, st, hd} {
			for _, why := range c.Retries {
				retried = append(retried, fmt.Sprintf("retried (%.0f ms segments, %.1f MB tails): %s", c.SegmentMS, float64(c.TailBytes)/1e6, why))
			}
			if c.HandoffMS > 0 {
				rows = append(rows, bench.Fig(fmt.Sprintf("hand-off, %.0f ms segments, %.1f MB tails", c.SegmentMS, float64(c.TailBytes)/1e6),
					c.HandoffMS, 1, "ms", "median: denoise end → next task in the stream"))
			}
		}
		bench.Print(w, fmt.Sprintf("critical-path (sim backend, labelled: chains of %d segments of %.0f ms denoising, the ref model's 720p segment, "+
			"and of %d of %.0f ms, in 64×64 windows; and of %d in 720p windows; real ffmpeg and stitcher)",
			r.Segments, r.SegmentMS, st.Segments, st.SegmentMS, hd.Segments), rows)
		for _, line := range retried {
			fmt.Fprintln(w, line)
		}
		if err := bench.Merge(out, "critical_path", r); err != nil {
			return err
		}
	}
	if only == "" || only == "throughput" {
		r, err := RunThroughput(ctx, o)
		if err != nil {
			return err
		}
		d := r.Durable
		rows := []bench.Row{}
		for _, t := range []*Throughput{&r, d} {
			c := t.CPU
			perSeg := func(cores float64) float64 { return cores / t.SegmentsPerS * 1e6 }
			rows = append(rows, bench.Fig("DONE committed, "+t.Stack, t.SegmentsPerS, 0, "segments/s", "≥ 5,000/s"),
				bench.Fig("  CPU: services and NATS", perSeg(c.SelfCores), 0, "µs/segment", fmt.Sprintf("%.2f cores", c.SelfCores)),
				bench.Fig("  CPU: Postgres", perSeg(c.PostgresCores), 0, "µs/segment", fmt.Sprintf("%.2f cores", c.PostgresCores)),
				bench.Fig("  CPU: the rest of the machine", c.OtherCores, 2, "cores", "MinIO, the kernel, other load"),
				bench.Fig("  CPU: idle", c.IdleCores, 2, "cores", "iowait included"))
		}
		rows = append(rows, bench.Fig("durable ÷ test settings", d.SegmentsPerS/r.SegmentsPerS, 2, "", ""),
			bench.Fig("segments", float64(r.Segments), 0, "segments per stack", ""))
		bench.Print(w, fmt.Sprintf("throughput (sim at 0 ms and the discard encoder, labelled: %d slots, one worker, window %d; %d CPUs; on each stack)",
			r.Slots, r.Window, r.CPU.CPUs), rows)
		return bench.Merge(out, "throughput", r)
	}
	return nil
}
