package devstack

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeEnv is a finder environment built in a temporary directory.
type fakeEnv struct {
	t    *testing.T
	base string
	vars map[string]string
}

func newFakeEnv(t *testing.T) *fakeEnv {
	return &fakeEnv{t: t, base: t.TempDir(), vars: map[string]string{}}
}

// exe creates an executable file at base/rel and returns its path.
func (e *fakeEnv) exe(rel string) string {
	e.t.Helper()
	p := filepath.Join(e.base, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *fakeEnv) finder() finder {
	if _, ok := e.vars["PATH"]; !ok {
		e.vars["PATH"] = filepath.Join(e.base, "empty-path")
	}
	return finder{
		getenv: func(k string) string { return e.vars[k] },
		root:   filepath.Join(e.base, "repo"),
		pgRoot: filepath.Join(e.base, "usr/lib/postgresql"),
	}
}

func TestFindMinIO(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(e *fakeEnv) string // returns the path wanted, "" for an error
		wantMsg []string                // in the error
	}{
		{
			name:  "nothing anywhere",
			setup: func(*fakeEnv) string { return "" },
			wantMsg: []string{`minio not found`, `run "make deps"`, "repo/.spool/bin go install github.com/minio/minio@" + MinIOVersion,
				"repo/.spool/bin/minio", "PATH"},
		},
		{
			name: "env points nowhere",
			setup: func(e *fakeEnv) string {
				e.vars[minioBinEnv] = filepath.Join(e.base, "nope")
				return ""
			},
			wantMsg: []string{"$SPOOL_MINIO_BIN=", "/nope", `run "make deps"`},
		},
		{
			name: "env wins over repo and PATH",
			setup: func(e *fakeEnv) string {
				e.exe("repo/.spool/bin/minio")
				e.exe("bin/minio")
				e.vars["PATH"] = filepath.Join(e.base, "bin")
				e.vars[minioBinEnv] = e.exe("elsewhere/minio")
				return e.vars[minioBinEnv]
			},
		},
		{
			name: "repo wins over PATH",
			setup: func(e *fakeEnv) string {
				e.exe("bin/minio")
				e.vars["PATH"] = filepath.Join(e.base, "bin")
				return e.exe("repo/.spool/bin/minio")
			},
		},
		{
			name: "PATH",
			setup: func(e *fakeEnv) string {
				e.vars["PATH"] = filepath.Join(e.base, "empty") + string(os.PathListSeparator) + filepath.Join(e.base, "bin")
				return e.exe("bin/minio")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t)
			want := tc.setup(e)
			got, err := e.finder().minio()
			checkFound(t, got, err, want, tc.wantMsg)
		})
	}
}

func TestFindPostgres(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(e *fakeEnv) string // returns the initdb wanted, "" for an error
		wantMsg  []string
		wantCli  string // createdb wanted, relative to base
		wantName string // the missing binary
	}{
		{
			name:     "nothing anywhere",
			setup:    func(*fakeEnv) string { return "" },
			wantMsg:  []string{`initdb not found`, `run "make deps" or "apt-get install -y postgresql"`, "usr/lib/postgresql/*/bin", "PATH"},
			wantName: "initdb",
		},
		{
			name: "client missing",
			setup: func(e *fakeEnv) string {
				e.exe("usr/lib/postgresql/15/bin/initdb")
				e.exe("usr/lib/postgresql/15/bin/postgres")
				return ""
			},
			wantMsg:  []string{`pg_isready not found`, `"apt-get install -y postgresql-client"`},
			wantName: "pg_isready",
		},
		{
			name: "highest version, client from PATH",
			setup: func(e *fakeEnv) string {
				for _, v := range []string{"9.6", "15", "16"} {
					e.exe("usr/lib/postgresql/" + v + "/bin/initdb")
					e.exe("usr/lib/postgresql/" + v + "/bin/postgres")
				}
				e.exe("usr/lib/postgresql/17/bin/psql") // a client-only version
				e.exe("usr/lib/postgresql/notaversion/bin/initdb")
				e.exe("bin/pg_isready")
				e.exe("bin/createdb")
				e.vars["PATH"] = filepath.Join(e.base, "bin")
				return filepath.Join(e.base, "usr/lib/postgresql/16/bin/initdb")
			},
			wantCli: "bin/createdb",
		},
		{
			name: "PATH only",
			setup: func(e *fakeEnv) string {
				for _, n := range []string{"postgres", "pg_isready", "createdb"} {
					e.exe("bin/" + n)
				}
				e.vars["PATH"] = filepath.Join(e.base, "bin")
				return e.exe("bin/initdb")
			},
			wantCli: "bin/createdb",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t)
			want := tc.setup(e)
			b, err := e.finder().postgres()
			checkFound(t, b.initdb, err, want, tc.wantMsg)
			if err != nil {
				var mb *MissingBinaryError
				if !errors.As(err, &mb) || mb.Name != tc.wantName {
					t.Errorf("error %v: want a MissingBinaryError for %s", err, tc.wantName)
				}
				return
			}
			if wantCli := filepath.Join(e.base, tc.wantCli); b.createdb != wantCli {
				t.Errorf("createdb = %s, want %s", b.createdb, wantCli)
			}
		})
	}
}

func checkFound(t *testing.T, got string, err error, want string, wantMsg []string) {
	t.Helper()
	if want != "" {
		if err != nil || got != want {
			t.Fatalf("found (%q, %v), want %q", got, err, want)
		}
		return
	}
	if !errors.Is(err, ErrMissingBinary) {
		t.Fatalf("found (%q, %v), want an error matching ErrMissingBinary", got, err)
	}
	for _, m := range wantMsg {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q lacks %q", err, m)
		}
	}
	t.Logf("message: %v", err)
}

func TestFindNATSServer(t *testing.T) {
	cached := "home/.cache/spool/tools/nats-server-" + NATSServerVersion + "/nats-server"
	for _, tc := range []struct {
		name    string
		setup   func(e *fakeEnv) string // returns the path wanted, "" for an error
		wantMsg []string                // in the error
	}{
		{
			name: "nothing anywhere, PATH not searched",
			setup: func(e *fakeEnv) string {
				e.exe("bin/nats-server")
				e.vars["PATH"] = filepath.Join(e.base, "bin")
				return ""
			},
			wantMsg: []string{`nats-server not found`, `run "make tools"`,
				"home/.cache/spool/tools/nats-server-" + NATSServerVersion + " go install github.com/nats-io/nats-server/v2@" + NATSServerVersion,
				"repo/.spool/bin/nats-server", "$SPOOL_NATS_SERVER_BIN"},
		},
		{
			name: "env points nowhere",
			setup: func(e *fakeEnv) string {
				e.vars[natsServerEnv] = filepath.Join(e.base, "nope")
				return ""
			},
			wantMsg: []string{"$SPOOL_NATS_SERVER_BIN=", "/nope", `run "make tools"`},
		},
		{
			name: "env wins over the cache",
			setup: func(e *fakeEnv) string {
				e.exe(cached)
				e.vars[natsServerEnv] = e.exe("elsewhere/nats-server")
				return e.vars[natsServerEnv]
			},
		},
		{
			name: "cache wins over the repo",
			setup: func(e *fakeEnv) string {
				e.exe("repo/.spool/bin/nats-server")
				return e.exe(cached)
			},
		},
		{
			name: "TOOLCACHE moves the cache",
			setup: func(e *fakeEnv) string {
				e.exe(cached)
				e.vars[toolCacheEnv] = filepath.Join(e.base, "tools")
				return e.exe("tools/nats-server-" + NATSServerVersion + "/nats-server")
			},
		},
		{
			name:  "repo",
			setup: func(e *fakeEnv) string { return e.exe("repo/.spool/bin/nats-server") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t)
			e.vars["HOME"] = filepath.Join(e.base, "home")
			want := tc.setup(e)
			got, err := e.finder().natsServer()
			checkFound(t, got, err, want, tc.wantMsg)
		})
	}
}
