package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is a run's outcome: what was injected, how the system recovered,
// and the checks. It is printed as a table and written as JSON.
type Report struct {
	Seed      int64         `json:"seed"`
	Replay    string        `json:"replay"`
	Short     bool          `json:"short"`
	Jobs      int           `json:"jobs"`
	Workers   int           `json:"workers"`
	NATSNodes int           `json:"nats_nodes"`
	Monkey    time.Duration `json:"monkey_ns"` // how long faults were injected
	Wall      time.Duration `json:"wall_ns"`   // the whole run, stack and checks included
	Started   time.Time     `json:"started"`
	Dir       string        `json:"dir"` // the parts' data and the processes' logs
	// Kinds summarises the faults' recoveries per kind; Faults are the
	// faults one by one.
	Kinds   []KindSummary `json:"kinds"`
	Faults  []*Fault      `json:"faults"`
	Retries Retries       `json:"retries"`
	// AbandonedAtNATS counts the attempts abandoned (delivered again)
	// while a NATS node was away or just after its return.
	AbandonedAtNATS int      `json:"abandoned_at_nats_faults"`
	Drains          []*Drain `json:"drains"`
	Hangs           []*Hang  `json:"hangs"`
	Crashes         []Crash  `json:"crashes"`
	Checks          []Check  `json:"checks"`
	Load            []*job   `json:"load"`
	// Recovery documents the measure's parameters.
	Recovery map[string]string `json:"recovery_measure"`
	// Commits and Appends are the series the recoveries are measured on,
	// in seconds since Started.
	Commits []float64 `json:"commits_s"`
	Appends []float64 `json:"appends_s"`
}

// offsets are ts as seconds since t0, to the millisecond.
func offsets(ts []time.Time, t0 time.Time) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = float64(t.Sub(t0).Milliseconds()) / 1000
	}
	return out
}

// OK reports whether every check passed.
func (r *Report) OK() bool {
	if len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

func recoveryMeasure() map[string]string {
	return map[string]string{
		"series":        "segment commits (the segment's artifact row) and stitch appends (its piece row), by Postgres' clock",
		"kind's series": "appends for a stitcher's fault, commits for every other",
		"level":         fmt.Sprintf("the series' mean rate over the %v before the fault", levelWindow),
		"back":          fmt.Sprintf("the first event e >= anchor with at least %.0f%% of that level in [e, e+%v]", backShare*100, backWindow),
		"anchor":        "the injection for process faults; the dependency's restart returning for NATS, Postgres and MinIO",
		"recovery":      "e - anchor",
		"no load":       fmt.Sprintf("fewer than %d events in the level window", minLevelEvents),
		"not recovered": "no such e before the last commit or append of the run",
		"overlapped":    "faults injected, or still away, between the fault's injection and its recovery",
	}
}

// Print writes the report's tables.
func (r *Report) Print(w io.Writer) {
	form := "full"
	if r.Short {
		form = "short"
	}
	fmt.Fprintf(w, "\nspool chaos (%s form): seed %d, %d jobs, %d workers, %d NATS nodes; faults for %v; wall %v\n\n", form, r.Seed, r.Jobs,
		r.Workers, r.NATSNodes, r.Monkey.Round(time.Second), r.Wall.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tseries\tinjected\trecovered\tp50 s\tmax s\tslowest\talone\tmax alone s\tmax since fault s\tnot recovered\tno load\tfailed\t")
	for _, k := range r.Kinds {
		p50, mx, slow, alone, since := "-", "-", "-", "-", "-"
		if k.Recovered > 0 {
			p50, mx, slow = fmt.Sprintf("%.1f", k.P50), fmt.Sprintf("%.1f", k.Max), fmt.Sprintf("#%d", k.Slowest)
			since = fmt.Sprintf("%.1f", k.MaxSinceFault)
		}
		if k.Alone > 0 {
			alone = fmt.Sprintf("%.1f", k.MaxAlone)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t\n", k.Kind, k.Series, k.Injected, k.Recovered, p50, mx, slow,
			k.Alone, alone, since, k.NotRecovered, k.NoLoad, k.Failed)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nrecovery: the %s rate (the stitcher's: the %s rate) back at %.0f%% of its level over the %v before the fault, in a %v\n"+
		"window from a commit on, counted from the fault (from the dependency's return for NATS, Postgres and MinIO; since fault: from\n"+
		"its injection, the outage included); alone: no other fault injected or under way before it recovered\n", SeriesCommits, SeriesAppends, backShare*100, levelWindow, backWindow)
	classes := make([]string, 0, len(r.Retries.ByClass))
	for c := range r.Retries.ByClass {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var parts []string
	for _, c := range classes {
		parts = append(parts, fmt.Sprintf("%s %d", c, r.Retries.ByClass[c]))
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	fmt.Fprintf(w, "\nretries by class: %s (%d attempts for %d segments); abandoned around NATS node faults: %d\n", strings.Join(parts, ", "),
		r.Retries.Attempts, r.Retries.Segments, r.AbandonedAtNATS)
	finished, back, other, exits := 0, 0, 0, 0
	for _, d := range r.Drains {
		for _, o := range d.Outcomes {
			switch o {
			case "finished":
				finished++
			case "handed back":
				back++
			default:
				other++
			}
		}
		if d.Exit == "0" {
			exits++
		}
	}
	fmt.Fprintf(w, "drains: %d workers (%d exited 0); their segments: %d finished within the drain timeout, %d handed back uncounted, %d ended otherwise\n",
		len(r.Drains), exits, finished, back, other)
	for _, d := range r.Drains {
		for i, o := range d.Outcomes {
			if o != "finished" && o != "handed back" {
				fmt.Fprintf(w, "  %s's %s: %s\n", d.Worker, d.Held[i], o)
			}
		}
	}
	for _, h := range r.Hangs {
		fmt.Fprintf(w, "hung engine: %s in %s, attempt %s, worker %s\n", h.Worker, h.Task, h.Outcome, h.Exit)
	}
	if len(r.Crashes) == 0 {
		fmt.Fprintln(w, "unexpected exits: none")
	}
	for _, c := range r.Crashes {
		fmt.Fprintf(w, "unexpected exit: %s at %s (%s), restarted; log %s\n", c.Name, c.At.Format("15:04:05.000"), c.Exit, c.Log)
	}
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, c.Name, c.Detail)
	}
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL (logs in " + r.Dir + ")"
	}
	fmt.Fprintf(w, "\n%s; replay: %s\n", verdict, r.Replay)
}

// WriteJSON writes the report to path, creating its directory.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("chaos: report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("chaos: report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("chaos: report: %w", err)
	}
	return nil
}
