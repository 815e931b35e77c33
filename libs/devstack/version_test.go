package devstack_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/spoolvideo/spool/libs/devstack"
)

// TestMakefilePinsTheSameMinIO: make deps and devstack must build one version.
func TestMakefilePinsTheSameMinIO(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^MINIO_VERSION\s*:=\s*(\S+)`).FindSubmatch(mk)
	if m == nil || string(m[1]) != devstack.MinIOVersion {
		t.Fatalf("Makefile MINIO_VERSION %q, devstack.MinIOVersion %q", m, devstack.MinIOVersion)
	}
}
