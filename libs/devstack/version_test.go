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

// TestNATSServerVersionIsThePinned: the cluster's nats-server binary is the
// version libs/go.mod pins (the embedded server's), and make tools builds it.
func TestNATSServerVersionIsThePinned(t *testing.T) {
	for _, f := range []struct{ path, re string }{
		{"../go.mod", `(?m)^\s*github\.com/nats-io/nats-server/v2\s+(\S+)`},
		{"../../Makefile", `(?m)^NATS_SERVER_VERSION\s*:=\s*(\S+)`},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(f.re).FindSubmatch(b)
		if m == nil || string(m[1]) != devstack.NATSServerVersion {
			t.Errorf("%s pins nats-server %q, devstack.NATSServerVersion %q", f.path, m, devstack.NATSServerVersion)
		}
	}
}
