package loadbench

import (
	"slices"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	xs := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q    float64
		want int
	}{{0, 1}, {0.5, 5}, {0.51, 6}, {0.99, 10}, {1, 10}} {
		if got := quantile(xs, c.q); got != c.want {
			t.Errorf("quantile(1..10, %v) = %d, want %d", c.q, got, c.want)
		}
	}
	if got := quantile([]int(nil), 0.5); got != 0 {
		t.Errorf("quantile(nil) = %d, want 0", got)
	}
}

// TestFairness: A's two segments start first, then the tenants alternate,
// then A has none left and B's last one starts alone.
func TestFairness(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	order := []string{TenantA, TenantA, TenantB, TenantA, TenantB, TenantA, TenantB, TenantB}
	var segs []segmentRecord
	for i, tenant := range order {
		segs = append(segs, segmentRecord{tenant: tenant, queued: at(float64(i) - 0.5), started: at(float64(i))})
	}
	slices.Reverse(segs) // records come in job order, not start order
	jobs := []jobRecord{{TenantA, at(0.1), at(5)}, {TenantA, at(0.2), at(7)}, {TenantB, at(0.3), at(8)}, {TenantB, at(1.5), at(9)}}
	f := fairness(t0, jobs, segs)
	if f.AStartsBeforeB != 2 {
		t.Errorf("A's starts before B's first = %d, want 2", f.AStartsBeforeB)
	}
	if f.BShareWhileBoth != 0.5 { // starts 2..5: B A B A
		t.Errorf("B's share while both = %v, want 0.5", f.BShareWhileBoth)
	}
	if f.A.FirstStartS != 0 || f.A.FirstQueuedS != -0.5 || f.B.FirstStartS != 2 || f.B.LastDoneS != 9 || f.A.P50DoneS != 5 || f.A.Jobs != 2 ||
		f.B.TakenInS != 1.5 {
		t.Errorf("tenants: A %+v, B %+v", f.A, f.B)
	}
	if want := []float64{0, 0, 1, 0, 1, 0, 1, 1}; !slices.Equal(f.BShareByTenth, want) { // 8 starts: two tenths are empty
		t.Errorf("B's share by tenth = %v, want %v", f.BShareByTenth, want)
	}
}
