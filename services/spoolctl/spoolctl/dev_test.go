package spoolctl_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/realpart"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// serving is the line spoolctl dev --demo prints once the video is written
// and the system goes on serving: the dashboard's link carries the admin
// key of the run, which the exports give too.
var serving = regexp.MustCompile(`^serving the dashboard at (http://127\.0\.0\.1:\d+)/#key=(spool_[A-Za-z0-9_-]+)&job=([a-z0-9_-]+) until Ctrl-C$`)

// demoRow says whether the demo's table has a row of a succeeded job of
// kind that wrote file.
func demoRow(printed []string, kind, file string) bool {
	for _, line := range printed {
		if strings.Contains(line, "  "+kind+"  ") && strings.Contains(line, "  succeeded  ") && strings.Contains(line, "  "+file+"  ") {
			return true
		}
	}
	return false
}

// TestDevDemoServesUntilInterrupt runs the spoolctl binary as a newcomer
// does (`spoolctl dev --demo out.mp4`, with a small job given by -spec): once
// the video is written it says that it serves the dashboard until Ctrl-C,
// the dashboard and the job's status answer, and SIGINT stops it cleanly
// (exit 0, Postgres shut down, the port closed). With -exit it exits by
// itself once the video is written and prints no link that would be dead.
// With the talking head (-talk, the default) it also writes out-talk.mp4, a
// video with the sound of the voice it made, and prints both jobs side by
// side.
func TestDevDemoServesUntilInterrupt(t *testing.T) {
	bin := devstacktest.Binary(t, "../cmd/spoolctl")
	root := systest.RepoRoot(t)
	dir := t.TempDir()
	stack := filepath.Join(dir, "stack") // kept between the cases: Postgres is initialised once
	spec := filepath.Join(dir, "spec.json")
	_ = os.WriteFile(spec, []byte(`{"prompt":"a lighthouse at dusk","durationFrames":30,"windowFrames":13,`+
		`"overlapFrames":4,"width":96,"height":64,"steps":3,"fps":24}`), 0o644)
	cases := []struct {
		name       string
		exit, talk bool
	}{
		{"serves until Ctrl-C", false, false},
		{"-exit", true, false},
		{"talking head -exit", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".mp4")
			args := []string{"dev", "-dir", stack, "-addr", "127.0.0.1:0", "-otel=false", "-slots", "1", "-demo", out, "-spec", spec,
				"-talk=" + strconv.FormatBool(c.talk)}
			if c.exit {
				args = append(args, "-exit")
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = root
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			lines := make(chan string, 256)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
				exited <- cmd.Wait()
			}()
			defer func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
				}
			}()
			var printed []string
			var url, key, id string
			deadline := time.After(3 * time.Minute)
		read:
			for {
				select {
				case line, ok := <-lines:
					if !ok {
						break read
					}
					printed = append(printed, line)
					if m := serving.FindStringSubmatch(line); m != nil {
						url, key, id = m[1], m[2], m[3]
						break read
					}
				case <-deadline:
					t.Fatalf("spoolctl dev printed no line after 3 minutes:\n%s\nstderr:\n%s", strings.Join(printed, "\n"), stderr.String())
				}
			}
			if st, err := os.Stat(out); err != nil || st.Size() == 0 {
				t.Fatalf("no video at %s: %v\nstdout:\n%s\nstderr:\n%s", out, err, strings.Join(printed, "\n"), stderr.String())
			}
			// awaitExit waits a minute at most for spoolctl dev to exit 0 after what.
			awaitExit := func(what string) {
				t.Helper()
				select {
				case err := <-exited:
					if err != nil {
						t.Fatalf("spoolctl dev after %s: %v\nstderr:\n%s", what, err, stderr.String())
					}
				case <-time.After(time.Minute):
					t.Fatalf("spoolctl dev did not exit within a minute of %s", what)
				}
			}
			if c.exit {
				awaitExit("writing the video with -exit")
				all := strings.Join(printed, "\n")
				if url != "" || !slices.Contains(printed, "wrote "+out) || !demoRow(printed, "spec spec.json", out) {
					t.Fatalf("spoolctl dev -exit printed a link it does not serve, or not the video and its row:\n%s", all)
				}
				talk := strings.TrimSuffix(out, ".mp4") + "-talk.mp4"
				if !c.talk {
					if _, err := os.Stat(talk); err == nil || strings.Contains(all, "talking head") {
						t.Fatalf("-talk=false made a talking head:\n%s", all)
					}
					return
				}
				if !slices.Contains(printed, "wrote "+talk) || !demoRow(printed, "talking head", talk) ||
					!slices.Contains(printed, "the talking head, with its sound: ffplay "+talk) {
					t.Fatalf("no talking head written, or not its row and how to play it:\n%s\nstderr:\n%s", all, stderr.String())
				}
				probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration",
					"-of", "compact=p=0:nk=1", talk).Output()
				if err != nil {
					t.Fatalf("ffprobe %s: %v", talk, err)
				}
				if !strings.Contains(string(probe), "h264|video") || !strings.Contains(string(probe), "aac|audio") {
					t.Fatalf("%s is not H.264 with AAC sound: %s", talk, probe)
				}
				return
			}
			if url == "" {
				t.Fatalf("spoolctl dev --demo did not say it serves the dashboard until Ctrl-C:\n%s\nstderr:\n%s", strings.Join(printed, "\n"), stderr.String())
			}
			if !slices.Contains(printed, "  export SPOOL_API_KEY='"+key+"'") {
				t.Fatalf("spoolctl dev printed no export of the dashboard's key:\n%s", strings.Join(printed, "\n"))
			}
			if resp, err := http.Get(url + "/status/" + id); err != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET /status without the key: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			for _, path := range []string{"/", "/status/" + id} {
				req, _ := http.NewRequest("GET", url+path, nil)
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("GET %s after the video was written: %v", path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (path != "/" && !strings.Contains(string(body), `"succeeded"`)) {
					t.Fatalf("GET %s after the video was written: %s %s", path, resp.Status, body)
				}
			}
			readmeNATSPub(t, root, printed, url, key)
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			awaitExit("SIGINT")
			if _, err := os.Stat(filepath.Join(stack, "postgres", "data", "postmaster.pid")); !os.IsNotExist(err) {
				t.Errorf("Postgres still runs after spoolctl dev stopped: postmaster.pid %v", err)
			}
			if resp, err := http.Get(url + "/"); err == nil {
				resp.Body.Close()
				t.Errorf("the dashboard still answers after spoolctl dev stopped: %s", resp.Status)
			}
		})
	}
}

// exportLine is one of the "export NAME='value'" lines spoolctl dev prints.
var exportLine = regexp.MustCompile(`^\s*export ([A-Z_]+)='([^']*)'$`)

// readmeNATSPub runs README.md's `nats pub spool.jobs.submit …` example as
// it is written, with the nats CLI (make tools) and the export lines
// spoolctl dev printed (the client user's NATS_URL, NATS_USER,
// NATS_PASSWORD), and checks that the job reached the system (asking the
// gateway with the API key it printed). With no user, the same command is
// refused.
func readmeNATSPub(t *testing.T, root string, printed []string, gateway, key string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	example := regexp.MustCompile(`(?m)^nats pub spool\.jobs\.submit .*\\\n.*$`).Find(readme)
	if example == nil {
		t.Fatal("README.md shows no `nats pub spool.jobs.submit` example")
	}
	nats := filepath.Join(root, ".spool", "bin", "nats")
	if _, err := os.Stat(nats); err != nil {
		realpart.Missing(t, "the nats CLI (run make tools): %v", err)
	}
	env := []string{"PATH=" + filepath.Dir(nats) + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var user string
	for _, line := range printed {
		if m := exportLine.FindStringSubmatch(line); m != nil && strings.HasPrefix(m[1], "NATS_") {
			env = append(env, m[1]+"="+m[2])
			if m[1] == "NATS_USER" {
				user = m[2]
			}
		}
	}
	if user != "client" {
		t.Fatalf("spoolctl dev printed no NATS_USER of the client role (got %q):\n%s", user, strings.Join(printed, "\n"))
	}
	run := func(env []string) ([]byte, error) {
		cmd := exec.Command("bash", "-c", string(example))
		cmd.Dir, cmd.Env = t.TempDir(), env
		return cmd.CombinedOutput()
	}
	if out, err := run(env); err != nil {
		t.Fatalf("README's nats pub example: %v\n%s", err, out)
	}
	var anonymous []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "NATS_USER=") && !strings.HasPrefix(kv, "NATS_PASSWORD=") {
			anonymous = append(anonymous, kv)
		}
	}
	if out, err := run(anonymous); err == nil {
		t.Fatalf("README's nats pub example without a user was accepted:\n%s", out)
	}
	id := regexp.MustCompile(`"id": "([a-z0-9-]+)"`).FindSubmatch(example)
	if id == nil {
		t.Fatalf("README's nats pub example names no job id:\n%s", example)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest("GET", gateway+"/status/"+string(id[1]), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job %s published with README's nats pub example never reached the gateway: %v", id[1], err)
		}
	}
}
