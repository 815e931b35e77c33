package e2ebench

import (
	"testing"
	"time"
)

// TestShare: the CPU share between two marks, in cores: this process's,
// Postgres's, the rest of the busy time, and idle.
func TestShare(t *testing.T) {
	at := time.Now()
	a := cpuMark{at: at, self: time.Second, postgres: time.Second, busy: 5 * time.Second, total: 10 * time.Second}
	b := cpuMark{at: at.Add(2 * time.Second), self: 3 * time.Second, postgres: 1500 * time.Millisecond, busy: 8 * time.Second, total: 14 * time.Second}
	got := share(a, b)
	if got.SelfCores != 1 || got.PostgresCores != 0.25 || got.OtherCores != 0.25 || got.IdleCores != 0.5 {
		t.Fatalf("share %+v, want 1 core self, 0.25 Postgres, 0.25 other, 0.5 idle", got)
	}
	if got := share(b, b); got.SelfCores != 0 || got.CPUs == 0 {
		t.Fatalf("no time between the marks: %+v", got)
	}
	m, err := markCPU(0)
	if err != nil || m.total <= 0 || m.busy > m.total || m.self <= 0 {
		t.Fatalf("this machine's mark %+v, %v", m, err)
	}
}
