package realpart_test

import (
	"flag"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/realpart"
)

// outcome records how Missing ended a test, without ending this one.
type outcome struct {
	testing.TB
	skipped, failed string
}

func (o *outcome) Helper()           {}
func (o *outcome) Skip(args ...any)  { o.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (o *outcome) Fatal(args ...any) { o.failed = fmt.Sprint(args...); runtime.Goexit() }

// missing runs Missing in its own goroutine (it ends it, as the testing
// package would) and reports what it did.
func missing(t *testing.T) *outcome {
	o := &outcome{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); realpart.Missing(o, "no %s here", "chromium") }()
	<-done
	return o
}

// TestMissingFailsInCI: a missing part fails the test with its message; it
// skips only under -short outside CI.
func TestMissingFailsInCI(t *testing.T) {
	short := flag.Lookup("test.short")
	defer short.Value.Set(short.Value.String())
	for _, c := range []struct {
		ci, short string
		skips     bool
	}{{"true", "true", false}, {"true", "false", false}, {"", "false", false}, {"", "true", true}} {
		t.Setenv("CI", c.ci)
		if err := short.Value.Set(c.short); err != nil {
			t.Fatal(err)
		}
		o := missing(t)
		if c.skips != (o.skipped != "") || c.skips == (o.failed != "") || !strings.Contains(o.skipped+o.failed, "no chromium here") {
			t.Errorf("CI=%q -short=%s: skipped %q, failed %q", c.ci, c.short, o.skipped, o.failed)
		}
	}
}
