package systest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/realpart"
)

// Chromium is what the dashboard's browser tests drive: Debian's headless
// Chromium through playwright-core (installed by `make browser-deps`).
type Chromium struct {
	Root   string // the repository
	Driver string // .spool/browser, where playwright-core is installed
	Binary string // the Chromium executable ($SPOOL_CHROMIUM or /usr/bin/chromium)
}

// NeedChromium finds node, Chromium, playwright-core and the bundled hls.js;
// a missing one fails the test with how to install it (realpart.Missing).
func NeedChromium(t testing.TB) Chromium {
	t.Helper()
	root := RepoRoot(t)
	c := Chromium{Root: root, Driver: filepath.Join(root, ".spool", "browser"), Binary: os.Getenv("SPOOL_CHROMIUM")}
	if c.Binary == "" {
		c.Binary = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Node.js ≥ 20)")
	}
	if _, err := os.Stat(c.Binary); err != nil {
		missing = append(missing, "chromium at "+c.Binary+" (Debian package chromium)")
	}
	if _, err := os.Stat(filepath.Join(c.Driver, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core in "+c.Driver)
	}
	if _, err := os.Stat(filepath.Join(root, "services", "gateway", "gateway", "web", "vendor", "hls.min.js")); err != nil {
		missing = append(missing, "the bundled hls.js")
	}
	if len(missing) > 0 {
		realpart.Missing(t, "missing %s: run `make test` or `make deps browser-deps` (they install them)", strings.Join(missing, ", "))
	}
	return c
}

// Command is node running script (a file of services/spoolctl/systest/browser)
// with args, copied beside playwright-core first: ES modules ignore
// NODE_PATH.
func (c Chromium) Command(ctx context.Context, script string, args ...string) (*exec.Cmd, error) {
	src, err := os.ReadFile(filepath.Join(c.Root, "services", "spoolctl", "systest", "browser", script))
	if err != nil {
		return nil, fmt.Errorf("browser script: %w", err)
	}
	run := filepath.Join(c.Driver, script)
	if err := os.WriteFile(run, src, 0o644); err != nil {
		return nil, fmt.Errorf("browser script: %w", err)
	}
	cmd := exec.CommandContext(ctx, "node", append([]string{run}, args...)...)
	cmd.Env = append(os.Environ(), "SPOOL_CHROMIUM="+c.Binary)
	return cmd, nil
}

// Run runs script to its end and returns what it printed on stdout.
func (c Chromium) Run(ctx context.Context, script string, args ...string) ([]byte, error) {
	cmd, err := c.Command(ctx, script, args...)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", script, err, stderr.String())
	}
	return stdout.Bytes(), nil
}
