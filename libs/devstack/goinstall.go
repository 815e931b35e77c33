package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// goTool is a server binary that devstack builds from the Go module proxy.
type goTool struct {
	name    string // the binary, e.g. "minio"
	module  string // the main package, e.g. "github.com/minio/minio"
	version string // the pinned version
	about   string // how long the first build takes, e.g. "about 4 minutes"
}

// goInstall installs t with "go install module@version" into binDir,
// appending the build's output to logPath, and returns binDir/name.
// Builders in other processes (parallel test binaries) take turns on the
// lock file binDir/.<name>.lock, and a builder that finds the binary there
// once it holds the lock uses it.
func goInstall(ctx context.Context, t goTool, binDir, logPath string, log *slog.Logger) (string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", t.name, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(binDir, "."+t.name+".lock"))
	if err != nil {
		return "", fmt.Errorf("build %s: %w", t.name, err)
	}
	defer unlock()
	bin := filepath.Join(binDir, t.name)
	if isExecutable(bin) {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	target := t.module + "@" + t.version
	log.Info("building "+t.name+" ("+t.about+" the first time)", "module", target, "gobin", binDir, "log", logPath)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", target)
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOBIN="+binDir)
	cmd.Dir = binDir
	if err := runOnce(ctx, "build "+t.name, cmd, logPath, nil); err != nil {
		return "", err
	}
	if !isExecutable(bin) {
		return "", fmt.Errorf("build %s: %s missing after go install", t.name, bin)
	}
	log.Info("built "+t.name, "bin", bin, "took", time.Since(start).Round(time.Second))
	return bin, nil
}

// lockFile takes an exclusive flock on path, polling until it is free or ctx
// is done, and returns its release.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: waiting for another build: %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
