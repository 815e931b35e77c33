package chaos

import (
	"testing"
	"time"
)

// TestReplay: the replay command names the seed and every size that is
// not the default.
func TestReplay(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Seed: 7, Jobs: DefaultJobs, Duration: DefaultDuration, Workers: DefaultWorkers}, "make chaos SEED=7"},
		{Options{Seed: 7, Jobs: 30, Duration: 2 * time.Minute, Workers: DefaultWorkers}, "make chaos SEED=7 CHAOS_FLAGS='-jobs 30 -duration 2m0s'"},
		{Options{Seed: 7, Short: true, Jobs: DefaultShortJobs, Duration: DefaultDuration, Workers: DefaultWorkers},
			"SPOOL_CHAOS_SEED=7 go test ./services/spoolctl/chaos -run Short"},
		{Options{Seed: 7, Short: true, Jobs: DefaultShortJobs, Duration: DefaultDuration, Workers: 6}, "make chaos SEED=7 CHAOS_FLAGS='-short -workers 6'"},
	} {
		if got := c.o.replay(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.o, got, c.want)
		}
	}
}
