// Package docker_test checks spool's container images and compose stack
// without a Docker engine: compose.yaml through the compose-spec loader,
// every Dockerfile through BuildKit's parser and linter plus spool's own
// rules, and the configuration files the stack mounts.
package docker_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The images built from this repository: service name, Dockerfile, the
// binary's main package and the module that holds it.
type image struct {
	Service    string // compose service (the worker has two: worker-gpu, worker-cpu)
	Dockerfile string // relative to docker/
	Module     string // relative to the repository root
	Main       string // relative to Module
	Binary     string
}

var images = []image{
	{"dispatcher", "dispatcher.Dockerfile", "services/dispatcher", "./cmd/spool-dispatcher", "spool-dispatcher"},
	{"gateway", "gateway.Dockerfile", "services/gateway", "./cmd/spool-gateway", "spool-gateway"},
	{"stitcher", "stitcher.Dockerfile", "services/stitcher", "./cmd/spool-stitcher", "spool-stitcher"},
	{"worker-gpu", "worker.Dockerfile", "services/worker", "./cmd/spool-worker", "spool-worker"},
}

// A further binary an image ships beside its service's, built in a stage
// of its own: spoolctl in the dispatcher's image, for the jobs that
// administer NATS (compose's nats-auth and nats-topology, the chart's
// topology keeper).
type tool struct {
	Dockerfile string // relative to docker/
	Stage      string // the stage that builds it
	Main       string // relative to the stage's WORKDIR
	Binary     string // in /usr/local/bin of the final stage
	CGO        bool   // built with cgo (it links libs/infer)
}

var tools = []tool{
	{"dispatcher.Dockerfile", "spoolctl", "./cmd/spoolctl", "spoolctl", true},
}

// repoRoot is the repository root: the build context of every image and
// the parent of docker/, where the tests run.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	root := filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(root, "docker", "compose.yaml")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// TestEveryDockerfileIsListed keeps the images table complete: a new
// Dockerfile must be added to it (and so to every check below).
func TestEveryDockerfileIsListed(t *testing.T) {
	found, err := filepath.Glob("*.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, im := range images {
		if !slices.Contains(listed, im.Dockerfile) {
			listed = append(listed, im.Dockerfile)
		}
	}
	slices.Sort(found)
	slices.Sort(listed)
	if !slices.Equal(found, listed) {
		t.Errorf("Dockerfiles in docker/ %v, listed in images %v", found, listed)
	}
	for _, df := range found {
		if _, err := os.Stat(df + ".dockerignore"); err != nil {
			t.Errorf("%s has no %s.dockerignore (its build context would be the whole repository): %v", df, df, err)
		}
	}
}
