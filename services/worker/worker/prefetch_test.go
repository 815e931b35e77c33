package worker

import (
	"testing"
	"time"
)

func TestPrefetchIsDueOnlyForShortEndings(t *testing.T) {
	cases := []struct {
		name                 string
		window, step, decode time.Duration
		at, total            int
		pending              bool
		want                 bool
	}{
		{"short sim step, last but one", 100 * time.Millisecond, 20 * time.Millisecond, 0, 9, 10, false, true},
		{"not the last step yet", 100 * time.Millisecond, 20 * time.Millisecond, 0, 8, 10, false, false},
		{"the last step is done", 100 * time.Millisecond, 20 * time.Millisecond, 0, 10, 10, false, false},
		{"a long decode follows", 100 * time.Millisecond, 20 * time.Millisecond, 2 * time.Second, 9, 10, false, false},
		{"a real model's step", 100 * time.Millisecond, 3 * time.Second, 0, 29, 30, false, false},
		{"off", 0, 20 * time.Millisecond, 0, 9, 10, false, false},
		{"no step timed yet", 100 * time.Millisecond, 0, 0, 1, 2, false, false},
		{"already fetching", 100 * time.Millisecond, 20 * time.Millisecond, 0, 9, 10, true, false},
	}
	for _, c := range cases {
		p := &prefetch{window: c.window, stepTook: c.step, decodeTook: c.decode}
		if c.pending {
			ch := make(chan fetched)
			p.pending.Store(&ch)
		}
		if got := p.due(c.at, c.total); got != c.want {
			t.Errorf("%s: due = %v, want %v", c.name, got, c.want)
		}
	}
}
