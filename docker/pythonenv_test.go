package docker_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// lockFile pins the python backend's environment; the worker image installs
// exactly it.
const lockFile = "libs/infer/python/requirements.lock"

// minPython is the oldest CPython the lock's pins install on (numpy 2.3 and
// others require 3.11).
const minPython = "3.11"

// ubuntuPython is the python3 of each Ubuntu release: the venv's interpreter
// and the libpython the python plugin embeds. Add a release before moving
// the worker onto it.
var ubuntuPython = map[string]string{"22.04": "3.10", "24.04": "3.12"}

var (
	venvCreate = regexp.MustCompile(`python3 -m venv (/\S+)`)
	lockPin    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*==[^=\s;]+(\s*;\s*\S.*)?$`)
	cudaPin    = regexp.MustCompile(`(?m)^cuda-toolkit==(\d+)\.`)
)

// TestWorkerPythonEnvironment: the worker image holds the pinned Python
// environment (a venv of the final image's python3 with exactly the lock,
// nothing unpinned, its closure checked by pip check), and the python plugin
// is built with that venv's interpreter, at the path the venv has in the
// final image, since the plugin embeds it.
func TestWorkerPythonEnvironment(t *testing.T) {
	df := parseDockerfile(t, "worker.Dockerfile")
	final := df.Stages[len(df.Stages)-1]

	venv, dir := venvStage(t, df)
	if venv == nil {
		t.Fatal("no stage creates the python backend's venv (python3 -m venv /…)")
	}
	if venv.BaseName != final.BaseName {
		t.Errorf("the venv is made on %s, the final stage runs on %s: the venv's interpreter must be the final image's python3", venv.BaseName, final.BaseName)
	}
	if !slices.Contains(aptInstalls(*venv), "python3-venv") {
		t.Errorf("stage %s does not apt-get install python3-venv", venv.Name)
	}
	checkLockInstall(t, *venv, dir)

	// The final image holds the venv at the same path.
	copied := false
	for _, c := range commands[*instructions.CopyCommand](final) {
		if strings.EqualFold(c.From, venv.Name) && slices.Equal(c.SourcePaths, []string{dir}) && filepath.Clean(c.DestPath) == dir {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the final stage does not COPY --from=%s %s %s", venv.Name, dir, dir)
	}

	// The python plugin is built with the venv's interpreter, which the
	// build stage sees at that path.
	built := false
	for _, s := range df.Stages {
		for _, r := range commands[*instructions.RunCommand](s) {
			line := strings.Join(r.CmdLine, " ")
			if !strings.Contains(line, "make -C /src/libs/infer") || !strings.Contains(line, " python") {
				continue
			}
			built = true
			if !strings.Contains(line, "PYTHON="+dir+"/bin/python") {
				t.Errorf("stage %s: %q builds the python plugin without PYTHON=%s/bin/python", s.Name, line, dir)
			}
			if !seesVenv(t, s, r, venv.Name, dir) {
				t.Errorf("stage %s builds the python plugin without the venv at %s (RUN --mount=type=bind,from=%s,source=%[2]s,target=%[2]s)", s.Name, dir, venv.Name)
			}
		}
	}
	if !built {
		t.Error("no stage runs make -C /src/libs/infer … python")
	}

	// The final image has the interpreter the venv links to and the
	// libpython the plugin loads, of a CPython the lock installs on.
	release := ubuntuRelease.FindStringSubmatch(final.BaseName)
	if release == nil {
		t.Fatalf("final base %s is not an Ubuntu release", final.BaseName)
	}
	py, ok := ubuntuPython[release[1]+release[2]]
	if !ok {
		t.Fatalf("Ubuntu %s: its python3 version is not in ubuntuPython", release[1]+release[2])
	}
	if compareVersions(py, minPython) < 0 {
		t.Errorf("the final base's python3 is %s; the lock's pins need CPython >= %s", py, minPython)
	}
	pkgs := aptInstalls(final)
	if !slices.Contains(pkgs, "python3") {
		t.Errorf("the final stage does not apt-get install python3 (the venv's interpreter): %v", pkgs)
	}
	if !slices.ContainsFunc(pkgs, func(p string) bool { return p == "libpython"+py || p == "libpython"+py+"t64" }) {
		t.Errorf("the final stage does not apt-get install libpython%s (the python plugin embeds it): %v", py, pkgs)
	}

	// torch's CUDA (the lock's cuda-toolkit) is the image's: the driver the
	// image demands is the one torch needs.
	lock, err := os.ReadFile(filepath.Join(repoRoot(t), lockFile))
	if err != nil {
		t.Fatal(err)
	}
	if m := cudaPin.FindSubmatch(lock); m != nil {
		cuda := cudaImage.FindStringSubmatch(final.BaseName)
		if cuda == nil || strings.Split(cuda[1], ".")[0] != string(m[1]) {
			t.Errorf("the lock pins CUDA %s (cuda-toolkit), the final base is %s: their major versions must match", m[1], final.BaseName)
		}
	}
}

// venvStage returns the stage that creates a venv, and the venv's directory.
func venvStage(t *testing.T, df dockerfile) (*instructions.Stage, string) {
	t.Helper()
	for i, s := range df.Stages {
		for _, r := range commands[*instructions.RunCommand](s) {
			if m := venvCreate.FindStringSubmatch(strings.Join(r.CmdLine, " ")); m != nil {
				return &df.Stages[i], filepath.Clean(m[1])
			}
		}
	}
	return nil, ""
}

// checkLockInstall checks that the venv stage copies the lock from the
// context and installs it with the venv's pip, its pins only (--no-deps,
// wheels only), then runs pip check; and that every line of the lock is a
// pin.
func checkLockInstall(t *testing.T, s instructions.Stage, dir string) {
	t.Helper()
	var lock string
	for _, c := range commands[*instructions.CopyCommand](s) {
		if c.From == "" && slices.Equal(c.SourcePaths, []string{lockFile}) {
			lock = filepath.Clean(c.DestPath)
		}
	}
	if lock == "" {
		t.Fatalf("stage %s does not COPY %s", s.Name, lockFile)
	}
	pip := dir + "/bin/pip"
	var line string
	for _, r := range commands[*instructions.RunCommand](s) {
		if l := strings.Join(r.CmdLine, " "); strings.Contains(l, pip+" install") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("stage %s does not run %s install", s.Name, pip)
	}
	fields := strings.Fields(line)
	for _, want := range [][]string{{"-r", lock}, {"--no-deps"}, {"--only-binary=:all:"}} {
		if i := slices.Index(fields, want[0]); i < 0 || (len(want) == 2 && (i+1 >= len(fields) || fields[i+1] != want[1])) {
			t.Errorf("stage %s: %q lacks %s", s.Name, line, strings.Join(want, " "))
		}
	}
	if i, j := strings.Index(line, pip+" install"), strings.Index(line, pip+" check"); j < i {
		t.Errorf("stage %s: no %s check after the install, which proves the lock holds every dependency", s.Name, pip)
	}

	f, err := os.Open(filepath.Join(repoRoot(t), lockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	pins := 0
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !lockPin.MatchString(l) {
			t.Errorf("%s:%d: %q is not a pin (name==version)", lockFile, n, l)
		}
		pins++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pins == 0 {
		t.Errorf("%s pins nothing", lockFile)
	}
}

// seesVenv reports whether a stage's RUN sees the venv stage's dir at the
// same path: bind-mounted by the RUN, or copied earlier in the stage.
func seesVenv(t *testing.T, s instructions.Stage, r *instructions.RunCommand, from, dir string) bool {
	t.Helper()
	for _, m := range runMounts(t, r) {
		if m.Type == instructions.MountTypeBind && strings.EqualFold(m.From, from) &&
			filepath.Clean("/"+m.Source) == dir && filepath.Clean(m.Target) == dir {
			return true
		}
	}
	for _, c := range s.Commands {
		if c == instructions.Command(r) {
			break
		}
		if cp, ok := c.(*instructions.CopyCommand); ok && strings.EqualFold(cp.From, from) &&
			slices.Equal(cp.SourcePaths, []string{dir}) && filepath.Clean(cp.DestPath) == dir {
			return true
		}
	}
	return false
}

// aptInstalls lists the packages a stage's RUNs apt-get install.
func aptInstalls(s instructions.Stage) []string {
	var pkgs []string
	for _, r := range commands[*instructions.RunCommand](s) {
		for _, cmd := range strings.Split(strings.Join(r.CmdLine, " "), "&&") {
			fields := strings.Fields(cmd)
			i := slices.Index(fields, "install")
			if i < 0 || !slices.Contains(fields[:i], "apt-get") {
				continue
			}
			for _, f := range fields[i+1:] {
				if f == "\\" || strings.HasPrefix(f, "-") {
					continue
				}
				pkgs = append(pkgs, f)
			}
		}
	}
	return pkgs
}
