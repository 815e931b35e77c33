package e2ebench_test

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/services/spoolctl/e2ebench"
)

// TestDemoSpecIsValid: both forms of the demo job are accepted, and each of
// their cues lands on a segment boundary of its own.
func TestDemoSpecIsValid(t *testing.T) {
	for _, c := range []struct {
		short  bool
		landed []int64
	}{{false, []int64{0, 457, 961}}, {true, []int64{0, 121, 205}}} {
		h := nats.Header{}
		h.Set(bus.HeaderContentType, bus.ContentJSON)
		spec, err := bus.DecodeJobSpec([]byte(e2ebench.DemoSpec("demo", c.short)), h)
		if err != nil {
			t.Fatal(err)
		}
		j, err := jobspec.Validate(spec, jobspec.DefaultCatalog())
		if err != nil {
			t.Fatalf("short %v: %v", c.short, err)
		}
		ls := j.Plan.Landings()
		for i, l := range ls {
			if i >= len(c.landed) || l.Landed != c.landed[i] {
				t.Fatalf("short %v: landings %+v, want frames %v", c.short, ls, c.landed)
			}
		}
	}
}
