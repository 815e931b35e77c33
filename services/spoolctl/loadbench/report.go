package loadbench

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/bench"
)

// Title is the table's title.
func (l Load) Title() string {
	sizes := make([]string, len(l.Bursts))
	for i, r := range l.Bursts {
		sizes[i] = fmt.Sprint(r.Jobs)
	}
	return fmt.Sprintf("load (bursts of %s jobs at once; %s)", strings.Join(sizes, ", "), l.Workload)
}

// Rows is the table: for each burst its wall time, /status latency, peak
// RSS of each service and fairness; then the growth of peak RSS from the
// smallest burst to the largest.
func (l Load) Rows() []bench.Row {
	var rows []bench.Row
	for _, r := range l.Bursts {
		at := fmt.Sprintf("%d jobs: ", r.Jobs)
		rows = append(rows,
			bench.Fig(at+"burst", r.BurstMS, 0, "ms, first publish → last PubAck", ""),
			bench.Fig(at+"wall", r.WallS, 1, fmt.Sprintf("s, burst → last job succeeded (%.1f jobs/s, %.1f segments/s, %d retries; load average %.1f)",
				r.JobsPerS, r.SegmentsPerS, r.Retries, r.LoadAvg), ""),
			bench.Row{Figure: at + "/status p50 / p99", Value: fmt.Sprintf("%.1f / %.1f", r.Status.P50MS, r.Status.P99MS),
				Unit: fmt.Sprintf("ms (max %.0f) of %d requests at %d/s; %s", r.Status.MaxMS, r.Status.Requests, r.Status.RatePerS, codes(r.Status))},
		)
		for _, why := range r.RetryReasons {
			rows = append(rows, bench.Row{Figure: at + "  retried", Value: why})
		}
		for _, state := range slices.Sorted(maps.Keys(r.Status.ByState)) {
			l := r.Status.ByState[state]
			label := at + "  of a job " + state
			if _, err := strconv.Atoi(state); err == nil {
				label = at + "  answered " + state
			}
			rows = append(rows, bench.Row{Figure: label, Value: fmt.Sprintf("%.1f / %.1f", l.P50MS, l.P99MS),
				Unit: fmt.Sprintf("ms of %d requests", l.Requests)})
		}
		for _, name := range slices.Sorted(maps.Keys(r.Memory)) {
			m := r.Memory[name]
			rows = append(rows, bench.Fig(at+name+" peak RSS", m.PeakMB, 1,
				fmt.Sprintf("MiB VmHWM (largest sample %.1f, at the end %.1f)", m.MaxSampledMB, m.EndMB), ""))
		}
		f := r.Fairness
		for _, t := range []struct {
			name string
			t    Tenant
		}{{"A", f.A}, {"B", f.B}} {
			rows = append(rows, bench.Row{Figure: at + "tenant " + t.name,
				Value: fmt.Sprintf("%.1f / %.1f / %.1f / %.1f", t.t.TakenInS, t.t.FirstStartS, t.t.P50DoneS, t.t.LastDoneS),
				Unit:  fmt.Sprintf("s: its %d jobs all taken in / first segment started / half done / all done", t.t.Jobs)})
		}
		tenths := make([]string, len(f.BShareByTenth))
		for i, s := range f.BShareByTenth {
			tenths[i] = fmt.Sprintf("%.2f", s)
		}
		rows = append(rows,
			bench.Fig(at+"B's share of starts", f.BShareWhileBoth, 2,
				fmt.Sprintf("while both tenants had segments to start (%d of A's started before B's first)", f.AStartsBeforeB), "≈ 0.5"),
			bench.Row{Figure: at + "B's share by tenth", Value: strings.Join(tenths, " "), Unit: "of all starts, in order"},
		)
	}
	if len(l.Bursts) > 1 {
		span := fmt.Sprintf("peak RSS at %d jobs ÷ at %d", l.Bursts[len(l.Bursts)-1].Jobs, l.Bursts[0].Jobs)
		rows = append(rows,
			bench.Fig("dispatcher RSS growth", l.DispatcherRSSGrowth, 2, span, "bounded: ≈ 1"),
			bench.Fig("stitcher RSS growth", l.StitcherRSSGrowth, 2, span, "bounded: ≈ 1"))
	}
	return rows
}

// codes lists the answers by status code.
func codes(s Status) string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(s.Codes)) {
		parts = append(parts, fmt.Sprintf("%d × %s", s.Codes[c], c))
	}
	if s.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped (%d in flight)", s.Skipped, maxInFlight))
	}
	return strings.Join(parts, ", ")
}
