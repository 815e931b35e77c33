package spoolctl_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
)

// natsAuth runs `spoolctl nats auth` with args and returns its stdout.
func natsAuth(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := spoolctl.Main(context.Background(), append([]string{"nats", "auth"}, args...), &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

// readPasswords reads every user's password file under dir/users.
func readPasswords(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{}
	for _, e := range entries {
		file := filepath.Join(dir, "users", e.Name(), "password")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", file, fi.Mode().Perm(), err)
		}
		pw[e.Name()] = strings.TrimSuffix(string(b), "\n")
	}
	return pw
}

// serverOptions parses the written server config as nats-server does.
func serverOptions(t *testing.T, dir string) *server.Options {
	t.Helper()
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte("include ./server/auth.conf\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server refuses the written config: %v", err)
	}
	return opts
}

// TestNATSAuth writes the users of two pools, checks them against
// bus.PermissionsOf as nats-server reads them, keeps the passwords on a
// second run and replaces only the rotated one.
func TestNATSAuth(t *testing.T) {
	dir := t.TempDir()
	out, err := natsAuth(t, "--out", dir, "--pools", "default,gpu,default", "--cost", "4")
	if err != nil {
		t.Fatalf("nats auth: %v\n%s", err, out)
	}
	pw := readPasswords(t, dir)
	want := []string{"admin", "client", "dispatcher", "gateway", "stitcher", "worker@default", "worker@gpu"}
	if got := slices.Sorted(maps.Keys(pw)); !slices.Equal(got, want) {
		t.Fatalf("password files of %v, want %v", got, want)
	}
	for user, p := range pw {
		if len(p) < 32 {
			t.Errorf("%s: password of %d characters, want ≥ 32", user, len(p))
		}
		if strings.Contains(out, p) {
			t.Errorf("the output shows %s's password:\n%s", user, out)
		}
	}
	opts := serverOptions(t, dir)
	if len(opts.Users) != len(want) {
		t.Fatalf("server has %d users, want %d", len(opts.Users), len(want))
	}
	for _, u := range opts.Users {
		if err := bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(pw[u.Username])); err != nil {
			t.Errorf("%s: the server's hash does not match the password file: %v", u.Username, err)
		}
		role, pool := bus.Role(u.Username), ""
		if p, ok := strings.CutPrefix(u.Username, "worker@"); ok {
			role, pool = bus.RoleWorker, p
		}
		perms, err := bus.PermissionsOf(role, pool, "")
		if err != nil {
			t.Fatalf("%s: %v", u.Username, err)
		}
		if !slices.Equal(u.Permissions.Publish.Allow, perms.Publish) || !slices.Equal(u.Permissions.Subscribe.Allow, perms.Subscribe) ||
			(u.Permissions.Response != nil) != perms.Responses {
			t.Errorf("%s: server permissions %+v %+v %+v, want %+v", u.Username, u.Permissions.Publish, u.Permissions.Subscribe, u.Permissions.Response, perms)
		}
	}

	// Again: nothing changes; with --rotate, only that user's password.
	if out, err := natsAuth(t, "--out", dir, "--pools", "default,gpu", "--cost", "4"); err != nil {
		t.Fatalf("nats auth again: %v\n%s", err, out)
	}
	if again := readPasswords(t, dir); !maps.Equal(again, pw) {
		t.Error("a second run changed passwords")
	}
	if out, err := natsAuth(t, "--out", dir, "--pools", "default,gpu", "--cost", "4", "--rotate", "dispatcher"); err != nil {
		t.Fatalf("nats auth --rotate: %v\n%s", err, out)
	}
	rotated := readPasswords(t, dir)
	for user, p := range pw {
		if changed := rotated[user] != p; changed != (user == "dispatcher") {
			t.Errorf("--rotate dispatcher: %s's password changed: %v", user, changed)
		}
	}
	for _, u := range serverOptions(t, dir).Users {
		if err := bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(rotated[u.Username])); err != nil {
			t.Errorf("after --rotate, %s: the server's hash does not match: %v", u.Username, err)
		}
	}

	for _, bad := range [][]string{{"--out", dir, "--rotate", "nobody"}, {"--out", dir, "--pools", "a.b"}, {"--out", dir, "--pools", ""}} {
		if out, err := natsAuth(t, bad...); err == nil {
			t.Errorf("nats auth %v: no error\n%s", bad, out)
		}
	}
	if _, err := natsAuth(t); !errors.Is(err, spoolctl.ErrUsage) {
		t.Errorf("nats auth without --out: %v, want ErrUsage", err)
	}
}

// TestNATSAuthServer runs a real server on the written config: each user
// connects with its password file's password, and nobody connects
// without one.
func TestNATSAuthServer(t *testing.T) {
	dir := t.TempDir()
	if out, err := natsAuth(t, "--out", dir, "--cost", "4"); err != nil {
		t.Fatalf("nats auth: %v\n%s", err, out)
	}
	pw := readPasswords(t, dir)
	opts := serverOptions(t, dir)
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	for user, p := range pw {
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, p), nats.CustomInboxPrefix(bus.InboxPrefix(user)))
		if err != nil {
			t.Errorf("%s with its password: %v", user, err)
			continue
		}
		nc.Close()
		if nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, p+"x")); err == nil {
			nc.Close()
			t.Errorf("%s with a wrong password connected", user)
		}
	}
	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Error("a connection without credentials was accepted")
	}
}
