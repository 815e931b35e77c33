package devstack

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// MinIOVersion is the pinned pseudo-version of github.com/minio/minio that
// devstack builds, and that "make deps" installs.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// minioModule is the module path of the MinIO server.
const minioModule = "github.com/minio/minio"

// minioBinEnv names the variable that points at a MinIO binary.
const minioBinEnv = "SPOOL_MINIO_BIN"

// pgDSNEnv names the variable that, when set, replaces the local Postgres.
const pgDSNEnv = "SPOOL_PG_DSN"

// debianPGRoot holds Debian's Postgres server binaries, one <ver>/bin each.
const debianPGRoot = "/usr/lib/postgresql"

// finder looks binaries up. Its fields are the environment it looks in, so
// tests can give it a fake one.
type finder struct {
	getenv func(string) string // os.Getenv
	root   string              // the repo root (holding go.work); "" if none
	pgRoot string              // debianPGRoot
}

func newFinder() finder {
	return finder{getenv: os.Getenv, root: repoRoot(), pgRoot: debianPGRoot}
}

// repoRoot returns the nearest directory holding go.work, from the working
// directory up, or "" if there is none.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, "go.work")); err == nil && !st.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// minioBinDir is where MinIO is looked for and built: <root>/.spool/bin.
func (f finder) minioBinDir() string {
	if f.root == "" {
		return ""
	}
	return filepath.Join(f.root, ".spool", "bin")
}

// minio returns the path of the MinIO server binary.
func (f finder) minio() (string, error) {
	var looked []string
	if p := f.getenv(minioBinEnv); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, "$"+minioBinEnv+"="+p)
	}
	if dir := f.minioBinDir(); dir != "" {
		p := filepath.Join(dir, "minio")
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, p)
	}
	if p, ok := f.lookPath("minio"); ok {
		return p, nil
	}
	looked = append(looked, "PATH")
	gobin := "$PWD/.spool/bin"
	if dir := f.minioBinDir(); dir != "" {
		gobin = dir
	}
	return "", &MissingBinaryError{
		Name:   "minio",
		Looked: looked,
		Install: fmt.Sprintf(`run "make deps" or "GOFLAGS= GOBIN=%s go install %s@%s" (about 4 minutes), or set $%s`,
			gobin, minioModule, MinIOVersion, minioBinEnv),
	}
}

// pgBinaries are the Postgres programs devstack runs.
type pgBinaries struct {
	initdb, postgres, pgIsReady, createdb string
}

// postgres finds the server binaries in the highest version under pgRoot,
// else on PATH, and the client binaries beside them, else on PATH.
func (f finder) postgres() (pgBinaries, error) {
	var b pgBinaries
	var dirs []string
	for _, v := range pgVersions(f.pgRoot) {
		dirs = append(dirs, filepath.Join(f.pgRoot, v, "bin"))
	}
	find := func(name string) (string, bool) {
		for _, d := range dirs {
			if p := filepath.Join(d, name); isExecutable(p) {
				return p, true
			}
		}
		return f.lookPath(name)
	}
	looked := []string{filepath.Join(f.pgRoot, "*", "bin"), "PATH"}
	for _, s := range []struct {
		name, pkg string
		dst       *string
	}{
		{"initdb", "postgresql", &b.initdb},
		{"postgres", "postgresql", &b.postgres},
		{"pg_isready", "postgresql-client", &b.pgIsReady},
		{"createdb", "postgresql-client", &b.createdb},
	} {
		p, ok := find(s.name)
		if !ok {
			return pgBinaries{}, &MissingBinaryError{
				Name:    s.name,
				Looked:  looked,
				Install: fmt.Sprintf(`run "make deps" or "apt-get install -y %s", or set $%s to use a running server`, s.pkg, pgDSNEnv),
			}
		}
		*s.dst = p
	}
	return b, nil
}

// pgVersions lists the version directories under root that hold initdb,
// highest first.
func pgVersions(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	type version struct {
		name string
		num  float64
	}
	var vs []version
	for _, e := range entries {
		n, err := strconv.ParseFloat(e.Name(), 64)
		if err != nil || !isExecutable(filepath.Join(root, e.Name(), "bin", "initdb")) {
			continue
		}
		vs = append(vs, version{e.Name(), n})
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].num > vs[j].num })
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.name
	}
	return names
}

// lookPath is exec.LookPath over the finder's PATH.
func (f finder) lookPath(name string) (string, bool) {
	for _, dir := range filepath.SplitList(f.getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, true
		}
	}
	return "", false
}

// isExecutable reports whether path is a regular file with an execute bit.
func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
