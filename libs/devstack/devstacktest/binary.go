package devstacktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binMu    sync.Mutex
	binBuilt = map[string]string{} // package path → binary
)

// Binary builds the Go command in pkg (a path relative to the test's
// directory, e.g. "../cmd/spool-worker") once per test binary and returns
// its path, for tests that run services as processes and kill them.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if bin, ok := binBuilt[pkg]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "spool-bin")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatal(fmt.Errorf("go build %s: %w\n%s", pkg, err, out))
	}
	binBuilt[pkg] = bin
	return bin
}
