package spoolctl

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
)

// runNATSCommand runs `spoolctl nats <declare|auth>`.
func runNATSCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "auth" {
		return runNATSAuth(args[1:], stdout, stderr)
	}
	return runNATS(ctx, args, stdout, stderr)
}

// The layout runNATSAuth writes under --out.
const (
	// natsAuthServerConf is the server's authorization block (bcrypt
	// hashes only), for nats-server to include.
	natsAuthServerConf = "server/auth.conf"
	// natsAuthPasswordFile is a user's password, in clear, under
	// users/<user>/: a service mounts its own directory alone and names
	// the file in SPOOL_NATS_PASSWORD_FILE.
	natsAuthPasswordFile = "password"
)

// runNATSAuth runs `spoolctl nats auth`: the users of a NATS server with
// authorization on (bus.PermissionsOf), as docker/compose.yaml runs it
// before NATS starts. A user's password is generated once and kept, so
// that running it again (every `docker compose up`) changes nothing but
// adds the users of new pools; --rotate replaces the named users'.
func runNATSAuth(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("nats auth", "--out DIR [--pools a,b] [--rotate user,...]", stderr)
	out := flags.String("out", "", "directory to write "+natsAuthServerConf+" (the server's users, bcrypt) and users/<user>/"+natsAuthPasswordFile+" (each user's password) into (required)")
	pools := flags.String("pools", "default", "GPU pools, comma-separated: one worker user (worker@<pool>) each")
	rotate := flags.String("rotate", "", "users whose passwords to replace, comma-separated (e.g. dispatcher,worker@default)")
	cost := flags.Int("cost", bcrypt.DefaultCost, "bcrypt cost of the server's password hashes")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: spoolctl nats auth --out DIR [--pools a,b] [--rotate user,...]\n\n"+
			"Writes the users of a NATS server with authorization on, one per role (admin, dispatcher,\n"+
			"stitcher, gateway, client, worker@<pool> per pool), each with its allow-lists:\n"+
			"  DIR/%s             the server's authorization block, passwords bcrypt-hashed;\n"+
			"                                 nats-server includes it\n"+
			"  DIR/users/<user>/%s   the user's password (mode 0600), for SPOOL_NATS_PASSWORD_FILE\n"+
			"A password that exists is kept; --rotate replaces it. Prints no secret.\n\nFlags:\n",
			natsAuthServerConf, natsAuthPasswordFile)
		flags.PrintDefaults()
	}
	pos, err := parse(flags, args)
	if err != nil {
		return err
	}
	if *out == "" || len(pos) > 0 {
		flags.Usage()
		return ErrUsage
	}
	users, err := natsAuthUsers(splitList(*pools))
	if err != nil {
		return fmt.Errorf("spoolctl nats auth: %w", err)
	}
	rotated := splitList(*rotate)
	for _, r := range rotated {
		if !slices.ContainsFunc(users, func(u devstack.NATSUser) bool { return u.Name == r }) {
			return fmt.Errorf("spoolctl nats auth: --rotate %q: no such user; want one of %s", r, natsUserNames(users))
		}
	}
	var added []string
	for i := range users {
		u := &users[i]
		pw, isNew, err := natsAuthPassword(filepath.Join(*out, "users", u.Name), slices.Contains(rotated, u.Name))
		if err != nil {
			return fmt.Errorf("spoolctl nats auth: user %s: %w", u.Name, err)
		}
		u.Password = pw
		if isNew {
			added = append(added, u.Name)
		}
	}
	conf, err := devstack.NATSAuthConf(users, *cost)
	if err != nil {
		return fmt.Errorf("spoolctl nats auth: %w", err)
	}
	// Only hashes: readable by the server whatever user it runs as.
	if err := writeFileAtomic(filepath.Join(*out, natsAuthServerConf), []byte(conf), 0o755, 0o644); err != nil {
		return fmt.Errorf("spoolctl nats auth: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s with users %s", filepath.Join(*out, natsAuthServerConf), natsUserNames(users))
	if len(added) > 0 {
		fmt.Fprintf(stdout, "; new passwords for %s", strings.Join(added, ", "))
	}
	fmt.Fprintln(stdout)
	return nil
}

// natsAuthUsers are the users of every role, a worker's once per pool,
// with their permissions and no password yet.
func natsAuthUsers(pools []string) ([]devstack.NATSUser, error) {
	if len(pools) == 0 {
		return nil, errors.New("--pools: want at least one pool")
	}
	var users []devstack.NATSUser
	add := func(role bus.Role, pool string) error {
		name, err := bus.UserName(role, pool, "")
		if err != nil {
			return err
		}
		if slices.ContainsFunc(users, func(u devstack.NATSUser) bool { return u.Name == name }) {
			return nil // a pool named twice (compose's two workers in one pool)
		}
		perms, err := bus.PermissionsOf(role, pool, "")
		if err != nil {
			return err
		}
		users = append(users, devstack.NATSUser{Name: name, Permissions: perms})
		return nil
	}
	for _, r := range bus.Roles {
		if r == bus.RoleWorker {
			for _, p := range pools {
				if err := add(r, p); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(r, ""); err != nil {
			return nil, err
		}
	}
	return users, nil
}

// natsAuthPassword returns the password kept in dir, making one when
// there is none or when replace is set (isNew).
func natsAuthPassword(dir string, replace bool) (pw string, isNew bool, err error) {
	file := filepath.Join(dir, natsAuthPasswordFile)
	if !replace {
		b, err := os.ReadFile(file)
		switch {
		case err == nil:
			if pw = strings.TrimRight(string(b), "\r\n"); pw == "" {
				return "", false, fmt.Errorf("%s is empty: delete it, or pass --rotate, to make a new password", file)
			}
			return pw, false, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", false, err
		}
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	pw = base64.RawURLEncoding.EncodeToString(raw)
	if err := writeFileAtomic(file, []byte(pw+"\n"), 0o700, 0o600); err != nil {
		return "", false, err
	}
	return pw, true, nil
}

// writeFileAtomic replaces file with data (mode perm), creating its
// directory (mode dirPerm): a reader sees the old file or the new one.
func writeFileAtomic(file string, data []byte, dirPerm, perm os.FileMode) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func natsUserNames(users []devstack.NATSUser) string {
	n := make([]string, len(users))
	for i, u := range users {
		n[i] = u.Name
	}
	return strings.Join(n, ", ")
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
