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

// buildMinIO installs MinIO at MinIOVersion into <repo root>/.spool/bin with
// "go install", appending the build's output to logPath. Builders in other
// processes (parallel test binaries) take turns on a lock file, and a builder
// that finds the binary there once it holds the lock uses it.
// Without a repo root there is nowhere to build into, and missing, the
// lookup's error, is returned.
func buildMinIO(ctx context.Context, f finder, missing error, logPath string, log *slog.Logger) (string, error) {
	binDir := f.minioBinDir()
	if binDir == "" {
		return "", missing
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("build minio: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(binDir, ".minio.lock"))
	if err != nil {
		return "", fmt.Errorf("build minio: %w", err)
	}
	defer unlock()
	bin := filepath.Join(binDir, "minio")
	if isExecutable(bin) {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	target := minioModule + "@" + MinIOVersion
	log.Info("building minio (about 4 minutes the first time)", "module", target, "gobin", binDir, "log", logPath)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", target)
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOBIN="+binDir)
	cmd.Dir = binDir
	if err := runOnce(ctx, "build minio", cmd, logPath, nil); err != nil {
		return "", err
	}
	if !isExecutable(bin) {
		return "", fmt.Errorf("build minio: %s missing after go install", bin)
	}
	log.Info("built minio", "bin", bin, "took", time.Since(start).Round(time.Second))
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
