package systest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

// repoRoot is the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.work above the test's directory")
		}
		dir = up
	}
}

// browser is what the dashboard driver (browser/dashboard.mjs) saw.
type browser struct {
	JobAppeared   bool      `json:"jobAppeared"`
	Bar           []float64 `json:"bar"`
	State         string    `json:"state"`
	PreviewPlayed bool      `json:"previewPlayed"`
	PreviewTime   float64   `json:"previewTime"`
	FinalPlayed   bool      `json:"finalPlayed"`
	FinalTime     float64   `json:"finalTime"`
	Timeline      int       `json:"timelineBlocks"`
	Errors        []string  `json:"errors"`
}

// TestDashboardInChromium: in Debian's headless Chromium, driven by
// playwright-core, a submitted job appears on the dashboard, its progress
// bar moves, the live preview plays through the bundled hls.js, and the
// final video plays. The screenshot is saved as bench/dashboard.png.
func TestDashboardInChromium(t *testing.T) {
	root := repoRoot(t)
	driver := filepath.Join(root, ".spool", "browser")
	chromium := os.Getenv("SPOOL_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Node.js ≥ 20)")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, "chromium at "+chromium+" (Debian package chromium)")
	}
	if _, err := os.Stat(filepath.Join(driver, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core in "+driver)
	}
	if _, err := os.Stat(filepath.Join(root, "services", "gateway", "gateway", "web", "vendor", "hls.min.js")); err != nil {
		missing = append(missing, "the bundled hls.js")
	}
	if len(missing) > 0 {
		if testing.Short() && os.Getenv("CI") != "true" {
			t.Skipf("missing %s; `make deps` installs them", strings.Join(missing, ", "))
		}
		t.Fatalf("missing %s: run `make deps` (it installs them)", strings.Join(missing, ", "))
	}

	sys := systest.Start(t, 30*time.Second, 2)
	// 8 segments of about a second each, slow enough to see the bar move
	// and the preview play.
	const job = "dashboard-job"
	spec := `{"id":"` + job + `","prompt":"a lighthouse in fog","durationFrames":192,"windowFrames":29,"overlapFrames":5,` +
		`"width":640,"height":384,"steps":200,"seed":3,"fps":24,"pool":"` + systest.Pool + `"}`
	shot := filepath.Join(root, "bench", "dashboard.png")
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The script runs beside its node_modules: ES modules ignore NODE_PATH.
	script, err := os.ReadFile(filepath.Join(root, "services", "spoolctl", "systest", "browser", "dashboard.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(driver, "dashboard.mjs")
	if err := os.WriteFile(run, script, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", run, sys.API.URL+"/", job, shot)
	cmd.Env = append(os.Environ(), "SPOOL_CHROMIUM="+chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The driver starts before the job is submitted; the row must appear.
	if err := cmd.Start(); err != nil {
		t.Fatalf("the dashboard driver: %v", err)
	}
	resp, err := http.Post(sys.API.URL+"/generate", "application/json", strings.NewReader(spec))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /generate: %s", resp.Status)
	}

	if err := cmd.Wait(); err != nil {
		t.Fatalf("the dashboard driver: %v\n%s", err, stderr.String())
	}
	var saw browser
	if err := json.Unmarshal(stdout.Bytes(), &saw); err != nil {
		t.Fatalf("the driver's report %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	t.Logf("saw %+v; screenshot %s", saw, shot)
	if len(saw.Errors) > 0 {
		t.Errorf("errors in the page: %q", saw.Errors)
	}
	if !saw.JobAppeared || saw.State != "succeeded" {
		t.Fatalf("the job appeared %v, ended %q", saw.JobAppeared, saw.State)
	}
	moved := 0
	for i := 1; i < len(saw.Bar); i++ {
		if saw.Bar[i] < saw.Bar[i-1] {
			t.Fatalf("the bar went back: %v", saw.Bar)
		}
		if saw.Bar[i-1] > 0 && saw.Bar[i] < 100 {
			moved++
		}
	}
	if moved == 0 || saw.Bar[len(saw.Bar)-1] != 100 {
		t.Fatalf("the bar did not move through the job: %v", saw.Bar)
	}
	if !saw.PreviewPlayed {
		t.Error("the live preview never played")
	}
	if !saw.FinalPlayed {
		t.Error("the final video never played")
	}
	if saw.Timeline == 0 {
		t.Error("no segment on the timeline")
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
}
