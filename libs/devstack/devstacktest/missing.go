package devstacktest

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
