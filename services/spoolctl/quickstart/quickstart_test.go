package quickstart_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// docs are the users' docs whose commands a newcomer types.
var docs = []string{"README.md", "deploy/README.md", "docker/README.md", "deploy/helm/README.md"}

var (
	// goRun is a documented `go run` or `go build` of one of the
	// workspace's commands: it compiles without the Makefile's cgo flags
	// and prints pages of warnings first.
	goRun = regexp.MustCompile(`go (run|build)\b[^\n` + "`" + `]*\./(services|libs)/`)
	// binRef is a documented run of a built binary.
	binRef = regexp.MustCompile(`(?:^|[\s` + "`" + `(])bin/([a-z][a-z0-9-]*)`)
	// warning is what gcc, cgo or the Go toolchain print about a problem.
	warning = regexp.MustCompile(`(?i)\bwarning:|cgo-gcc-prolog|-Wdeprecated`)
)

// modules are the workspace's modules as dir/... patterns, as the Makefile's
// PKGS.
func modules(t *testing.T) []string {
	t.Helper()
	mods, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}/...").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.Fields(string(mods))
}

// mains are the binaries of the workspace: the last element of each main
// package's directory, as `go build -o bin/` names them.
func mains(t *testing.T, root string) []string {
	t.Helper()
	args := append([]string{"list", "-f", `{{if eq .Name "main"}}{{.Dir}}{{end}}`}, modules(t)...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var names []string
	for _, dir := range strings.Fields(string(out)) {
		names = append(names, filepath.Base(dir))
	}
	sort.Strings(names)
	return names
}

// documented returns, per doc, the binaries its commands run from bin/.
func documented(t *testing.T, root string) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	for _, doc := range docs {
		text, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range binRef.FindAllStringSubmatch(string(text), -1) {
			found[doc] = append(found[doc], m[1])
		}
	}
	return found
}

// TestDocsRunBuiltBinaries: no doc tells a newcomer to `go run` one of the
// workspace's commands, and every bin/<name> a doc runs is a binary that
// `make build` writes.
func TestDocsRunBuiltBinaries(t *testing.T) {
	root := systest.RepoRoot(t)
	built := map[string]bool{}
	for _, name := range mains(t, root) {
		built[name] = true
	}
	refs := documented(t, root)
	for _, doc := range docs {
		t.Run(doc, func(t *testing.T) {
			text, _ := os.ReadFile(filepath.Join(root, doc))
			for i, line := range strings.Split(string(text), "\n") {
				if goRun.MatchString(line) {
					t.Errorf("%s:%d runs a command with go run or go build; run the binary make build writes to bin/:\n%s", doc, i+1, line)
				}
			}
			for _, name := range refs[doc] {
				if !built[name] {
					t.Errorf("%s runs bin/%s, which make build does not write (it writes %v)", doc, name, mains(t, root))
				}
			}
		})
	}
	if len(refs["README.md"]) == 0 {
		t.Error("README.md runs no binary from bin/")
	}
}

// newcomerEnv is this process's environment without what the Makefile or
// the caller set for cgo and make: a fresh shell's.
func newcomerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "CGO_CFLAGS", "CGO_CPPFLAGS", "GOFLAGS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// TestMakeBuildPrintsNoWarning runs `make build` as a newcomer does, in a
// shell without the project's CGO_CFLAGS: it prints no compiler warning,
// writes every binary of the workspace to bin/, and each binary a doc runs
// answers -h with its usage and no warning. The Go build cache and the
// binaries already in bin/ keep a repeated run short.
func TestMakeBuildPrintsNoWarning(t *testing.T) {
	root := systest.RepoRoot(t)
	cmd := exec.Command("make", "build")
	cmd.Dir, cmd.Env = root, newcomerEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("make build: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(stdout.String()+stderr.String(), "\n") {
		if warning.MatchString(line) {
			t.Fatalf("make build printed a warning:\n%s\n\nall of it:\n%s%s", line, stdout.String(), stderr.String())
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, "go: downloading ") {
			t.Errorf("make build wrote to stderr: %q", line)
		}
	}
	for _, name := range mains(t, root) {
		if _, err := os.Stat(filepath.Join(root, "bin", name)); err != nil {
			t.Errorf("make build wrote no bin/%s: %v", name, err)
		}
	}
	runs := map[string]bool{}
	for _, names := range documented(t, root) {
		for _, name := range names {
			runs[name] = true
		}
	}
	t.Run("README's render example", func(t *testing.T) { readmeRender(t, root, "render --local", "local.mp4") })
	t.Run("README's media render example", func(t *testing.T) {
		readmeRender(t, root, "render --local -q -video", "extend-local.mp4")
	})
	t.Run("README's python render example", func(t *testing.T) {
		readmeRender(t, root, "render --local --backend python", "tiny-local.mp4")
	})
	for name := range runs {
		t.Run(name+" -h", func(t *testing.T) {
			cmd := exec.Command(filepath.Join(root, "bin", name), "-h")
			cmd.Dir, cmd.Env = t.TempDir(), newcomerEnv()
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Usage") || warning.MatchString(string(out)) {
				t.Errorf("bin/%s -h: %v\n%s", name, err, out)
			}
		})
	}
}

// readmeRender runs README.md's `spoolctl <command>` example (writing /tmp/<output>) as
// written, in bash from the repository root, with its /tmp/ files in a
// temporary directory instead.
func readmeRender(t *testing.T, root, command, output string) {
	text, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, b := range strings.Split(string(text), "```sh\n")[1:] {
		if b, _, _ = strings.Cut(b, "```"); strings.Contains(b, "bin/spoolctl "+command) && strings.Contains(b, "/tmp/"+output) {
			block = b
		}
	}
	if block == "" {
		t.Fatalf("README.md shows no `bin/spoolctl %s` example writing /tmp/%s", command, output)
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(block, "/tmp/", dir+"/"))
	cmd.Dir, cmd.Env = root, newcomerEnv()
	out, err := cmd.CombinedOutput()
	if err != nil || warning.Match(out) {
		t.Fatalf("README's render example: %v\n%s\n%s", err, block, out)
	}
	if st, err := os.Stat(filepath.Join(dir, output)); err != nil || st.Size() == 0 {
		t.Fatalf("README's render example wrote no video: %v", err)
	}
}

// makeEnv is what `make -s env` prints, run as a newcomer whose shell has
// its own CGO_CFLAGS: the variables every make target builds with.
func makeEnv(t *testing.T, root string, shell []string) []string {
	t.Helper()
	cmd := exec.Command("make", "-s", "env")
	cmd.Dir, cmd.Env = root, shell
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make -s env: %v", err)
	}
	var env []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		k, v, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 {
			t.Fatalf("make -s env printed %q, want export K='V' lines", line)
		}
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	return env
}

// TestMakeCompilesCgoWithoutWarning compiles, afresh, every cgo package
// outside the standard library that make build compiles (go-nvml, the
// inference library) with the variables the Makefile sets, for a newcomer whose
// shell sets CGO_CFLAGS of its own: no compiler warning. The Go build cache
// keeps no warning of a package it compiled earlier, so make build on a
// warm cache proves nothing; a macro unique to this run makes cgo compile
// these packages and runtime/cgo again (about 20 s), and only these.
func TestMakeCompilesCgoWithoutWarning(t *testing.T) {
	root := systest.RepoRoot(t)
	shell := append(newcomerEnv(), "CGO_CFLAGS=-O2 -g")
	env := makeEnv(t, root, shell)
	args := append([]string{"list", "-deps", "-f", "{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}"}, modules(t)...)
	list := exec.Command("go", args...)
	list.Dir, list.Env = root, append(shell, env...)
	pkgs, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(pkgs), "go-nvml/pkg/nvml") || !strings.Contains(string(pkgs), "libs/infer") {
		t.Fatalf("the cgo packages of the workspace: %s; want go-nvml and libs/infer among them", pkgs)
	}
	for i, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "CGO_CFLAGS" {
			env[i] = fmt.Sprintf("%s=%s -DSPOOL_FRESH_COMPILE=%d", k, v, time.Now().UnixNano())
		}
	}
	build := exec.Command("go", append([]string{"build"}, strings.Fields(string(pkgs))...)...)
	build.Dir, build.Env = root, append(shell, env...)
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Fields(string(pkgs)), err, out)
	}
	if warning.Match(out) || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("compiling the cgo packages with make's variables printed:\n%s", out)
	}
}
