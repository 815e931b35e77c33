package devstack

import (
	"context"
	"log/slog"
)

// minioTool is the MinIO server at its pinned version.
var minioTool = goTool{name: "minio", module: minioModule, version: MinIOVersion, about: "about 4 minutes"}

// buildMinIO installs MinIO at MinIOVersion into <repo root>/.spool/bin with
// "go install", appending the build's output to logPath (see goInstall).
// Without a repo root there is nowhere to build into, and missing, the
// lookup's error, is returned.
func buildMinIO(ctx context.Context, f finder, missing error, logPath string, log *slog.Logger) (string, error) {
	binDir := f.minioBinDir()
	if binDir == "" {
		return "", missing
	}
	return goInstall(ctx, minioTool, binDir, logPath, log)
}
