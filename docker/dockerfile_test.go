package docker_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// dockerfile is one parsed Dockerfile.
type dockerfile struct {
	Name   string
	Source []byte
	Stages []instructions.Stage
	Ignore *patternmatcher.PatternMatcher // its <name>.dockerignore
}

func parseDockerfile(t *testing.T, name string) dockerfile {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		t.Fatalf("%s: parse: %v", name, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: parser warning: %s", name, w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("%s: instructions: %v", name, err)
	}
	f, err := os.Open(name + ".dockerignore")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatalf("%s.dockerignore: %v", name, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf("%s.dockerignore: %v", name, err)
	}
	return dockerfile{Name: name, Source: src, Stages: stages, Ignore: pm}
}

// commands returns a stage's commands of type T.
func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// pinned reports an image reference without a tag or digest, or tagged
// latest: its content would change under the same Dockerfile.
func pinned(image string) error {
	if strings.Contains(image, "$") {
		return fmt.Errorf("image %q is a variable; name it literally so that it is reviewed and pinned", image)
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fmt.Errorf("image %q: %w", image, err)
	}
	if _, ok := ref.(reference.Digested); ok {
		return nil
	}
	tagged, ok := ref.(reference.Tagged)
	if !ok {
		return fmt.Errorf("image %q has no tag: pin a version", image)
	}
	if tagged.Tag() == "latest" {
		return fmt.Errorf("image %q is tagged latest: pin a version", image)
	}
	return nil
}

func TestDockerfileRules(t *testing.T) {
	root := repoRoot(t)
	for _, im := range images {
		t.Run(im.Dockerfile, func(t *testing.T) {
			df := parseDockerfile(t, im.Dockerfile)
			if len(df.Stages) < 2 {
				t.Fatalf("%d stage(s); build and run in separate stages", len(df.Stages))
			}
			checkBases(t, df)
			checkFinalStage(t, df, im)
			checkCopies(t, df, root)
			for _, s := range df.Stages {
				for _, c := range s.Commands {
					if strings.EqualFold(c.Name(), "add") {
						t.Errorf("stage %s: ADD at line %d; use COPY (ADD fetches URLs and unpacks archives)", s.Name, c.Location()[0].Start.Line)
					}
				}
			}
		})
	}
}

// Every FROM names an earlier stage or a pinned image.
func checkBases(t *testing.T, df dockerfile) {
	t.Helper()
	var names []string
	for i, s := range df.Stages {
		if !slices.Contains(names, strings.ToLower(s.BaseName)) {
			if err := pinned(s.BaseName); err != nil {
				t.Errorf("stage %d (%s): %v", i, s.Name, err)
			}
		}
		if i < len(df.Stages)-1 && s.Name == "" {
			t.Errorf("stage %d (FROM %s) has no name; name every stage but the final one", i, s.BaseName)
		}
		names = append(names, strings.ToLower(s.Name))
	}
}

var rootUsers = []string{"", "root", "0", "root:root", "0:0"}

// The final stage runs as a non-root user, by exec-form ENTRYPOINT.
func checkFinalStage(t *testing.T, df dockerfile, im image) {
	t.Helper()
	final := df.Stages[len(df.Stages)-1]
	users := commands[*instructions.UserCommand](final)
	if len(users) == 0 {
		t.Error("the final stage sets no USER; it would run as the base image's user")
	} else if u := users[len(users)-1].User; slices.Contains(rootUsers, u) {
		t.Errorf("the final stage runs as %q", u)
	}
	eps := commands[*instructions.EntrypointCommand](final)
	if len(eps) != 1 || eps[0].PrependShell {
		t.Fatalf("the final stage needs one exec-form ENTRYPOINT, has %d", len(eps))
	}
	if want := "/usr/local/bin/" + im.Binary; !slices.Equal(eps[0].CmdLine, []string{want}) {
		t.Errorf("ENTRYPOINT %v, want [%s]", eps[0].CmdLine, want)
	}
	// The binary the ENTRYPOINT runs is the one copied from the build.
	copied := false
	for _, c := range commands[*instructions.CopyCommand](final) {
		if c.From != "" && c.DestPath == "/usr/local/bin/"+im.Binary {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the final stage does not copy %s to /usr/local/bin from a build stage", im.Binary)
	}
}

// COPY --from and RUN --mount=…,from= name an earlier stage; a COPY from
// the build context names paths that exist in the repository and that the
// Dockerfile's ignore file lets through.
func checkCopies(t *testing.T, df dockerfile, root string) {
	t.Helper()
	var earlier []string
	for _, s := range df.Stages {
		for _, r := range commands[*instructions.RunCommand](s) {
			for _, m := range runMounts(t, r) {
				if m.From != "" && !slices.Contains(earlier, strings.ToLower(m.From)) {
					t.Errorf("stage %s: RUN --mount from=%s names no earlier stage (%v)", s.Name, m.From, earlier)
				}
			}
		}
		for _, c := range commands[*instructions.CopyCommand](s) {
			if c.From != "" {
				if !slices.Contains(earlier, strings.ToLower(c.From)) {
					t.Errorf("stage %s: COPY --from=%s names no earlier stage (%v)", s.Name, c.From, earlier)
				}
				continue
			}
			for _, src := range c.SourcePaths {
				checkContextPath(t, df, root, s.Name, src)
			}
		}
		earlier = append(earlier, strings.ToLower(s.Name))
	}
}

func checkContextPath(t *testing.T, df dockerfile, root, stage, src string) {
	t.Helper()
	if filepath.IsAbs(src) || strings.HasPrefix(filepath.Clean(src), "..") {
		t.Errorf("stage %s: COPY %s leaves the build context", stage, src)
		return
	}
	matches, err := filepath.Glob(filepath.Join(root, src))
	if err != nil || len(matches) == 0 {
		t.Errorf("stage %s: COPY %s: no such path in the repository", stage, src)
		return
	}
	for _, m := range matches {
		rel, _ := filepath.Rel(root, m)
		ignored, err := df.Ignore.MatchesOrParentMatches(rel)
		if err != nil {
			t.Errorf("%s.dockerignore: %v", df.Name, err)
		}
		if ignored {
			t.Errorf("stage %s: COPY %s, but %s.dockerignore leaves %s out of the context", stage, src, df.Name, rel)
		}
	}
}

var goImage = regexp.MustCompile(`^golang:(\d+\.\d+\.\d+)-`)

// Every image builds with one Go release, at least the workspace's.
func TestDockerfilesShareGoRelease(t *testing.T) {
	root := repoRoot(t)
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)$`).FindSubmatch(work)
	if m == nil {
		t.Fatal("go.work has no go directive")
	}
	minGo := string(m[1])
	var release string
	for _, im := range images {
		df := parseDockerfile(t, im.Dockerfile)
		found := false
		for _, s := range df.Stages {
			if g := goImage.FindStringSubmatch(s.BaseName); g != nil {
				found = true
				if release == "" {
					release = g[1]
				} else if g[1] != release {
					t.Errorf("%s builds with Go %s, another image with %s", im.Dockerfile, g[1], release)
				}
			}
		}
		if !found {
			t.Errorf("%s uses no golang:<x.y.z>-… image", im.Dockerfile)
		}
	}
	if release != "" && compareVersions(release, minGo) < 0 {
		t.Errorf("images build with Go %s, older than go.work's go %s", release, minGo)
	}
}

// compareVersions compares dotted decimal versions.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			_, _ = fmt.Sscan(as[i], &x)
		}
		if i < len(bs) {
			_, _ = fmt.Sscan(bs[i], &y)
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// The Go services other than the worker are static binaries.
func TestStaticImages(t *testing.T) {
	for _, name := range []string{"dispatcher.Dockerfile", "gateway.Dockerfile", "stitcher.Dockerfile"} {
		df := parseDockerfile(t, name)
		if env := stageEnv(df.Stages[0]); env["CGO_ENABLED"] != "0" {
			t.Errorf("%s: build stage CGO_ENABLED=%q, want 0 (a static binary)", name, env["CGO_ENABLED"])
		}
	}
}

var ubuntuRelease = regexp.MustCompile(`^(?:ubuntu:(\d+\.\d+)|nvidia/cuda:[\d.]+-(?:runtime|base)-ubuntu(\d+\.\d+))$`)

// The stitcher's crossfades and the dispatcher's re-encoded inputs are
// spliced into the workers' fragments and must carry a byte-equal init
// segment, and the gateway probes uploads with the same ffprobe: every
// image installs ffmpeg from one Ubuntu release.
func TestStitcherAndWorkerShareFFmpeg(t *testing.T) {
	releases := map[string]string{}
	for _, name := range []string{"stitcher.Dockerfile", "worker.Dockerfile", "dispatcher.Dockerfile", "gateway.Dockerfile"} {
		df := parseDockerfile(t, name)
		final := df.Stages[len(df.Stages)-1]
		m := ubuntuRelease.FindStringSubmatch(final.BaseName)
		if m == nil {
			t.Errorf("%s: final base %s is not an Ubuntu release", name, final.BaseName)
			continue
		}
		releases[name] = m[1] + m[2]
		installs := false
		for _, r := range commands[*instructions.RunCommand](final) {
			line := strings.Join(r.CmdLine, " ")
			if strings.Contains(line, "apt-get install") && slices.Contains(strings.Fields(line), "ffmpeg") {
				installs = true
			}
		}
		if !installs {
			t.Errorf("%s: the final stage does not apt-get install ffmpeg", name)
		}
	}
	for name, r := range releases {
		if w := releases["worker.Dockerfile"]; r != w {
			t.Errorf("%s on Ubuntu %s, worker on Ubuntu %s: their ffmpeg builds differ", name, r, w)
		}
	}
}

var cudaImage = regexp.MustCompile(`^nvidia/cuda:([\d.]+)-(devel|runtime)-(ubuntu[\d.]+)$`)

func TestWorkerImage(t *testing.T) {
	df := parseDockerfile(t, "worker.Dockerfile")
	final := df.Stages[len(df.Stages)-1]
	rt := cudaImage.FindStringSubmatch(final.BaseName)
	if rt == nil || rt[2] != "runtime" {
		t.Fatalf("final base %s, want nvidia/cuda:<version>-runtime-ubuntu…", final.BaseName)
	}
	var build *instructions.Stage
	for i, s := range df.Stages {
		if m := cudaImage.FindStringSubmatch(s.BaseName); m != nil && m[2] == "devel" {
			build = &df.Stages[i]
			if m[1] != rt[1] || m[3] != rt[3] {
				t.Errorf("built on %s, run on %s: CUDA version and OS must match", s.BaseName, final.BaseName)
			}
		}
	}
	if build == nil {
		t.Fatal("no stage builds on an nvidia/cuda devel image (nvcc for the cuda plugin)")
	}
	if env := stageEnv(*build); env["CGO_ENABLED"] != "1" {
		t.Errorf("build stage CGO_ENABLED=%q, want 1 (libs/infer is C)", env["CGO_ENABLED"])
	}
	sigs := commands[*instructions.StopSignalCommand](final)
	if len(sigs) != 1 || sigs[0].Signal != "SIGTERM" {
		t.Errorf("the final stage must declare STOPSIGNAL SIGTERM (the worker drains on it)")
	}
	env := stageEnv(final)
	if env["SPOOL_INFER_PLUGIN_DIR"] == "" {
		t.Error("the final stage does not set SPOOL_INFER_PLUGIN_DIR")
	}
	// Both plugins land in SPOOL_INFER_PLUGIN_DIR, built by libs/infer's own Makefile.
	var plugins []string
	for _, c := range commands[*instructions.CopyCommand](final) {
		for _, src := range c.SourcePaths {
			if strings.HasPrefix(filepath.Base(src), "libspool_infer_") {
				plugins = append(plugins, filepath.Base(src))
				if filepath.Clean(c.DestPath) != env["SPOOL_INFER_PLUGIN_DIR"] {
					t.Errorf("%s copied to %s, not SPOOL_INFER_PLUGIN_DIR %s", src, c.DestPath, env["SPOOL_INFER_PLUGIN_DIR"])
				}
			}
		}
	}
	slices.Sort(plugins)
	if want := []string{"libspool_infer_cuda.so", "libspool_infer_python.so"}; !slices.Equal(plugins, want) {
		t.Errorf("plugins %v, want %v", plugins, want)
	}
	makes := false
	for _, r := range commands[*instructions.RunCommand](*build) {
		line := strings.Join(r.CmdLine, " ")
		if strings.Contains(line, "make -C /src/libs/infer") && strings.Contains(line, " cuda") && strings.Contains(line, " python") {
			makes = true
		}
	}
	if !makes {
		t.Error("the build stage does not run make -C /src/libs/infer … cuda python")
	}
}

// runMounts returns a RUN's --mount flags, parsed as BuildKit does with
// variables left unexpanded (the parser defers every field but from= to an
// expander).
func runMounts(t *testing.T, r *instructions.RunCommand) []*instructions.Mount {
	t.Helper()
	if err := r.Expand(func(word string) (string, error) { return word, nil }); err != nil {
		t.Fatalf("line %d: RUN --mount: %v", r.Location()[0].Start.Line, err)
	}
	return instructions.GetMounts(r)
}

// stageEnv is the ENV a stage sets (not its base image's).
func stageEnv(s instructions.Stage) map[string]string {
	env := map[string]string{}
	for _, e := range commands[*instructions.EnvCommand](s) {
		for _, kv := range e.Env {
			env[kv.Key] = strings.Trim(kv.Value, `"`)
		}
	}
	return env
}

// Every tool is built in its own stage, with cgo as it needs, and copied
// into /usr/local/bin of its image's final stage; a cgo binary needs a
// final base with a C library (not distroless static).
func TestToolsInImages(t *testing.T) {
	for _, tl := range tools {
		t.Run(tl.Dockerfile+"/"+tl.Binary, func(t *testing.T) {
			df := parseDockerfile(t, tl.Dockerfile)
			stage, _ := goBuildStage(df, tl.Stage)
			if stage == nil {
				t.Fatalf("no stage %s builds %s", tl.Stage, tl.Binary)
			}
			want := map[bool]string{true: "1", false: "0"}[tl.CGO]
			if got := stageEnv(*stage)["CGO_ENABLED"]; got != want {
				t.Errorf("stage %s: CGO_ENABLED=%q, want %s", tl.Stage, got, want)
			}
			final := df.Stages[len(df.Stages)-1]
			if !slices.ContainsFunc(commands[*instructions.CopyCommand](final), func(c *instructions.CopyCommand) bool {
				return strings.EqualFold(c.From, tl.Stage) && c.DestPath == "/usr/local/bin/"+tl.Binary
			}) {
				t.Errorf("the final stage does not copy %s from stage %s to /usr/local/bin", tl.Binary, tl.Stage)
			}
			if tl.CGO && strings.Contains(final.BaseName, "distroless/static") {
				t.Errorf("%s links C, but the final base %s has no C library", tl.Binary, final.BaseName)
			}
		})
	}
	// compose's nats-auth writes into a fresh named volume at this path as
	// the nonroot user: the image must hold the directory, owned by it, for
	// Docker to copy into the volume.
	df := parseDockerfile(t, "dispatcher.Dockerfile")
	final := df.Stages[len(df.Stages)-1]
	if !slices.ContainsFunc(commands[*instructions.RunCommand](final), func(r *instructions.RunCommand) bool {
		return strings.Contains(strings.Join(r.CmdLine, " "), "install -d -o nonroot -g nonroot -m 0700 "+natsAuthDir)
	}) {
		t.Errorf("dispatcher.Dockerfile's final stage does not create %s for nonroot", natsAuthDir)
	}
}
