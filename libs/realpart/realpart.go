// Package realpart holds the one rule for a real part (a server, a built
// plugin, a browser, a free port) that a test needs and cannot have: the
// test fails, saying how to install it; only under "go test -short"
// outside CI (CI != "true") does it skip. It imports nothing of spool, so
// that any test may use it, even one run under valgrind.
package realpart

import (
	"fmt"
	"os"
	"testing"
)

// Missing reports a real part that a test needs and cannot have (a server,
// a built plugin, a browser): it fails the test with the message, which
// should say how to install the part. Only under "go test -short" outside
// CI (CI != "true") does it skip instead, so that no test skips in CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip(msg + " (skipped under -short outside CI)")
	}
	t.Fatal(msg)
}
