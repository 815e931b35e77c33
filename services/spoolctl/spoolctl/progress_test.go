package spoolctl

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestMeterPlainLines: off a terminal the meter writes one newline-ended
// line per change (percentage, segments, state or workers; never the ETA
// alone), at most one a second, the newest change of a second written
// after it or at close, and a change of state at once.
func TestMeterPlainLines(t *testing.T) {
	type step struct {
		at time.Duration
		p  progress
	}
	run := func(pct float64, done int, state, busy string) progress {
		return progress{fraction: pct, done: done, total: 3, state: state, eta: 5 * time.Second, busy: busy}
	}
	cases := []struct {
		name  string
		steps []step
		want  []string
	}{
		{"one line per change", []step{
			{0, run(0, 0, "queued", "")},
			{time.Second, run(1.0/3, 1, "running", "seg 1@w/0")},
			{2 * time.Second, run(2.0/3, 2, "running", "seg 2@w/0")},
			{3 * time.Second, progress{fraction: 1, done: 3, total: 3, state: "succeeded", eta: 0}},
		}, []string{
			"  0%  0/3 segments  queued  ETA 5s",
			" 33%  1/3 segments  running  ETA 5s  seg 1@w/0",
			" 66%  2/3 segments  running  ETA 5s  seg 2@w/0",
			"100%  3/3 segments  succeeded  ETA 0s",
		}},
		{"a repeat or the ETA alone is no change", []step{
			{0, run(0.5, 1, "running", "")},
			{2 * time.Second, run(0.5, 1, "running", "")},
			{4 * time.Second, progress{fraction: 0.5, done: 1, total: 3, state: "running", eta: -1}},
		}, []string{" 50%  1/3 segments  running  ETA 5s"}},
		{"changes within a second: the newest, after it", []step{
			{0, run(0.1, 0, "running", "")},
			{200 * time.Millisecond, run(0.2, 0, "running", "")},
			{400 * time.Millisecond, run(0.3, 0, "running", "")},
			{1100 * time.Millisecond, run(0.4, 1, "running", "")},
		}, []string{" 10%  0/3 segments  running  ETA 5s", " 40%  1/3 segments  running  ETA 5s"}},
		{"a change held back is written at close", []step{
			{0, run(0.1, 0, "running", "")},
			{500 * time.Millisecond, run(0.2, 0, "running", "")},
		}, []string{" 10%  0/3 segments  running  ETA 5s", " 20%  0/3 segments  running  ETA 5s"}},
		{"a change undone within the second is not written", []step{
			{0, run(0.1, 0, "running", "seg 0@w/0")},
			{300 * time.Millisecond, run(0.1, 0, "running", "")},
			{600 * time.Millisecond, run(0.1, 0, "running", "seg 0@w/0")},
		}, []string{" 10%  0/3 segments  running  ETA 5s  seg 0@w/0"}},
		{"a change of state is never held back", []step{
			{0, run(0, 0, "queued", "")},
			{100 * time.Millisecond, run(0, 0, "running", "")},
			{200 * time.Millisecond, progress{fraction: 0, done: 0, total: 3, state: "failed", eta: -1}},
		}, []string{"  0%  0/3 segments  queued  ETA 5s", "  0%  0/3 segments  running  ETA 5s", "  0%  0/3 segments  failed  ETA ?"}},
		{"render: no state", []step{
			{0, progress{fraction: 0.25, done: 1, total: 4, eta: 3 * time.Second}},
		}, []string{" 25%  1/4 segments  ETA 3s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			m := newMeter(&buf)
			base := time.Unix(1_700_000_000, 0)
			var now time.Time
			m.now = func() time.Time { return now }
			for _, s := range c.steps {
				now = base.Add(s.at)
				m.show(s.p)
			}
			m.close()
			out := buf.String()
			if strings.Contains(out, "\r") || !strings.HasSuffix(out, "\n") {
				t.Fatalf("not plain newline-ended lines: %q", out)
			}
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestMeterFitsTheTerminal: the description beside the bar is cut so that
// the line fits the terminal's width.
func TestMeterFitsTheTerminal(t *testing.T) {
	cases := []struct {
		cols int
		desc string
		want string
	}{
		{0, "3/8 segments  running", "3/8 segments  running"},
		{120, "3/8 segments  running", "3/8 segments  running"},
		{40, "3/8 segments  running  ETA 5s  seg 4@worker-a/0", "3/8 segments  run…"},
		{15, "3/8 segments", ""},
	}
	for _, c := range cases {
		m := &meter{cols: c.cols}
		if got := m.fit(c.desc); got != c.want {
			t.Errorf("fit(%q) on %d columns = %q, want %q", c.desc, c.cols, got, c.want)
		}
	}
}
