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
	for _, im := range images {
		t.Run(im.Dockerfile, func(t *testing.T) {
			df := parseDockerfile(t, im.Dockerfile)
			stage, run := goBuildStage(df)
			if stage == nil {
				t.Fatal("no stage runs go build")
			}
			if !strings.Contains(run, im.Main) || !strings.Contains(run, "/out/"+im.Binary) {
				t.Fatalf("go build line %q does not build %s into /out/%s", run, im.Main, im.Binary)
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
			cmd := exec.Command(goBin, "build", "-trimpath", "-o", filepath.Join(tmp, "out", im.Binary), im.Main)
			cmd.Dir = workdir
			cmd.Env = os.Environ()
			for k, v := range env {
				if k != "PATH" {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build %s in the image's build context (%s): %v\n%s", im.Main, env, err, out)
			}
		})
	}
}

// goBuildStage returns the stage whose RUN builds the Go binary, and that
// RUN's command line.
func goBuildStage(df dockerfile) (*instructions.Stage, string) {
	for i, s := range df.Stages {
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
