package docker_test

import (
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// TestBuildStageBuildsTheBinary replays each Dockerfile's Go build stage
// here: the files its COPY instructions take from the context (less what
// its .dockerignore leaves out) go into a temporary root, and its go build
// runs there with the stage's ENV (GOWORK=off, CGO_ENABLED, …). It fails
// when an image would miss a source directory, a go.mod of a replaced
// module, or a go.sum line that the workspace hides.
func TestBuildStageBuildsTheBinary(t *testing.T) {
	root := repoRoot(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	type build struct{ dockerfile, stage, main, binary string }
	var builds []build
	for _, im := range images {
		builds = append(builds, build{im.Dockerfile, "", im.Main, im.Binary})
	}
	for _, tl := range tools {
		builds = append(builds, build{tl.Dockerfile, tl.Stage, tl.Main, tl.Binary})
	}
	for _, b := range builds {
		t.Run(b.dockerfile+"/"+b.binary, func(t *testing.T) {
			df := parseDockerfile(t, b.dockerfile)
			stage, run := goBuildStage(df, b.stage)
			if stage == nil {
				t.Fatalf("no stage %q runs go build", b.stage)
			}
			if !strings.Contains(run, b.main) || !strings.Contains(run, "/out/"+b.binary) {
				t.Fatalf("go build line %q does not build %s into /out/%s", run, b.main, b.binary)
			}
			tmp := t.TempDir()
			workdir := tmp
			env := stageEnv(*stage)
		replay:
			for _, c := range stage.Commands {
				switch c := c.(type) {
				case *instructions.CopyCommand:
					if c.From == "" {
						replayCopy(t, df, root, tmp, c)
					}
				case *instructions.WorkdirCommand:
					workdir = filepath.Join(tmp, c.Path)
				case *instructions.RunCommand:
					if strings.Contains(strings.Join(c.CmdLine, " "), "go build") {
						break replay
					}
				}
			}
			cmd := exec.Command(goBin, "build", "-trimpath", "-o", filepath.Join(tmp, "out", b.binary), b.main)
			cmd.Dir = workdir
			cmd.Env = os.Environ()
			for k, v := range env {
				if k != "PATH" {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build %s in the image's build context (%s): %v\n%s", b.main, env, err, out)
			}
		})
	}
}

// goBuildStage returns the stage named name (the first that runs go
// build, for "") and the command line of its RUN that builds a Go binary.
func goBuildStage(df dockerfile, name string) (*instructions.Stage, string) {
	for i, s := range df.Stages {
		if name != "" && !strings.EqualFold(s.Name, name) {
			continue
		}
		for _, r := range commands[*instructions.RunCommand](s) {
			if line := strings.Join(r.CmdLine, " "); strings.Contains(line, "go build") {
				return &df.Stages[i], line
			}
		}
	}
	return nil, ""
}

// replayCopy copies a COPY's context sources to its destination under tmp,
// as BuildKit does: a directory's contents into the destination, a file
// into the destination directory.
func replayCopy(t *testing.T, df dockerfile, root, tmp string, c *instructions.CopyCommand) {
	t.Helper()
	dest := filepath.Join(tmp, c.DestPath)
	for _, src := range c.SourcePaths {
		from := filepath.Join(root, src)
		info, err := os.Stat(from)
		if err != nil {
			t.Fatalf("COPY %s: %v", src, err)
		}
		if !info.IsDir() {
			copyFile(t, from, filepath.Join(dest, filepath.Base(from)))
			continue
		}
		err = filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			ignored, err := df.Ignore.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if ignored {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			inner, _ := filepath.Rel(from, p)
			copyFile(t, p, filepath.Join(dest, inner))
			return nil
		})
		if err != nil {
			t.Fatalf("COPY %s: %v", src, err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
