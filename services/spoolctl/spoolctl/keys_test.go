package spoolctl_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// TestKeysCommands: with an admin key, spoolctl keys creates a tenant's
// key (printed alone on stdout, once), lists it (never a secret) and
// revokes it, after which the key is refused; the tenant's key may not
// manage keys; spoolctl audit shows the changes; -h explains it all and
// shows no key.
func TestKeysCommands(t *testing.T) {
	sys := systest.Start(t, 0, 0)
	ctl := func(key string, args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := spoolctl.Main(context.Background(), append(args, "--api", sys.API.URL, "--key", key), &stdout, &stderr)
		return strings.TrimSpace(stdout.String()), stderr.String(), err
	}
	tenant := fmt.Sprintf("keys-cli-%d", time.Now().UnixNano()%1e9)
	key, stderr, err := ctl(sys.Key, "keys", "create", "--tenant", tenant, "--name", "ci")
	if err != nil || !strings.HasPrefix(key, "spool_") || strings.Contains(key, "\n") || !strings.Contains(stderr, "shown this once") {
		t.Fatalf("keys create: %v %q\n%s", err, key, stderr)
	}
	id := strings.SplitN(strings.TrimPrefix(key, "spool_"), "_", 2)[0]
	secret := strings.TrimPrefix(key, "spool_"+id+"_")
	list, _, err := ctl(sys.Key, "keys", "list", "--tenant", tenant)
	if err != nil || !strings.Contains(list, id) || !strings.Contains(list, "ci") || strings.Contains(list, secret) {
		t.Fatalf("keys list: %v\n%s", err, list)
	}
	if _, _, err := ctl(key, "keys", "list"); err == nil || !strings.Contains(err.Error(), "admin key") {
		t.Fatalf("keys list with a tenant's key: %v", err)
	}
	if _, _, err := ctl(key, "status", "no-such-job"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("the tenant's key before it is revoked: %v", err)
	}
	if out, _, err := ctl(sys.Key, "keys", "revoke", id); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("keys revoke: %v %s", err, out)
	}
	if _, _, err := ctl(key, "status", "no-such-job"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked key: %v", err)
	}
	audit, _, err := ctl(sys.Key, "audit", "--tenant", tenant)
	if err != nil || !strings.Contains(audit, "key.create") || !strings.Contains(audit, "key.revoke") || strings.Contains(audit, secret) {
		t.Fatalf("audit: %v\n%s", err, audit)
	}
	for _, args := range [][]string{{"keys", "-h"}, {"keys", "create", "-h"}, {"-h"}} {
		t.Setenv("SPOOL_API_KEY", key)
		var stdout, stderr bytes.Buffer
		if err := spoolctl.Main(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if help := stdout.String() + stderr.String(); !strings.Contains(help, "SPOOL_API_KEY") || strings.Contains(help, secret) {
			t.Fatalf("%v:\n%s", args, help)
		}
	}
}
