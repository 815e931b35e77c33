package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
)

// NATSServerVersion is the version of github.com/nats-io/nats-server/v2
// whose binary NATSCluster runs: the one libs/go.mod pins (and embeds in
// the single-server stack), and the one "make tools" installs.
const NATSServerVersion = "v2.15.2"

// natsServerEnv names the variable that points at a nats-server binary.
const natsServerEnv = "SPOOL_NATS_SERVER_BIN"

// natsServerTool is the NATS server at its pinned version.
var natsServerTool = goTool{
	name: "nats-server", module: "github.com/nats-io/nats-server/v2", version: NATSServerVersion,
	about: "about a minute",
}

// toolCacheEnv names the variable locating the cache of built tools, the
// Makefile's TOOLCACHE; $HOME/.cache/spool/tools when unset.
const toolCacheEnv = "TOOLCACHE"

// toolDir is where the Makefile and devstack install t:
// <tool cache>/<name>-<version>, "" when there is no home to hold the cache.
func (f finder) toolDir(t goTool) string {
	cache := f.getenv(toolCacheEnv)
	if cache == "" {
		home := f.getenv("HOME")
		if home == "" {
			return ""
		}
		cache = filepath.Join(home, ".cache", "spool", "tools")
	}
	return filepath.Join(cache, t.name+"-"+t.version)
}

// natsServer returns the path of the nats-server binary: $SPOOL_NATS_SERVER_BIN
// (taken as it is), else the pinned version in the tool cache, else
// <repo root>/.spool/bin/nats-server (where "make tools" copies it from the
// cache). PATH is not searched: a nats-server there may be any version.
func (f finder) natsServer() (string, error) {
	var looked []string
	if p := f.getenv(natsServerEnv); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, "$"+natsServerEnv+"="+p)
	}
	dir := f.toolDir(natsServerTool)
	for _, d := range []string{dir, f.minioBinDir()} {
		if d == "" {
			continue
		}
		p := filepath.Join(d, natsServerTool.name)
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, p)
	}
	gobin := dir
	if gobin == "" {
		gobin = "$HOME/.cache/spool/tools/" + natsServerTool.name + "-" + natsServerTool.version
	}
	return "", &MissingBinaryError{
		Name:   natsServerTool.name,
		Looked: looked,
		Install: fmt.Sprintf(`run "make tools" or "GOFLAGS= GOBIN=%s go install %s@%s" (%s), or set $%s`,
			gobin, natsServerTool.module, natsServerTool.version, natsServerTool.about, natsServerEnv),
	}
}

// buildNATSServer installs nats-server at NATSServerVersion into the tool
// cache with "go install", appending the build's output to logPath (see
// goInstall). Without a tool cache there is nowhere to build into, and
// missing, the lookup's error, is returned; a failed build's error names
// the make target too.
func buildNATSServer(ctx context.Context, f finder, missing error, logPath string, log *slog.Logger) (string, error) {
	dir := f.toolDir(natsServerTool)
	if dir == "" {
		return "", missing
	}
	bin, err := goInstall(ctx, natsServerTool, dir, logPath, log)
	if err != nil {
		return "", fmt.Errorf("%w; building it failed: %w", missing, err)
	}
	return bin, nil
}
