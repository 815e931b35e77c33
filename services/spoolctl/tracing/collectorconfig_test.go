package tracing_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spoolvideo/spool/libs/devstack"
)

// TestClusterCollectorConfigValidates: the collector built from
// deploy/otel/builder.yaml accepts deploy/otel/collector.yaml, the config
// for clusters, with every component it names.
func TestClusterCollectorConfigValidates(t *testing.T) {
	bin, err := devstack.CollectorBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join("..", "..", "..", "deploy", "otel", "collector.yaml")
	out, err := exec.Command(bin, "validate", "--config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("%s validate --config %s: %v\n%s", bin, cfg, err, out)
	}
}
