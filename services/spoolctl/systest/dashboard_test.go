package systest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

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
	AxisTicks     []string  `json:"axisTicks"`
	Narrowest     float64   `json:"narrowestBlock"` // px
	Widest        float64   `json:"widestBlock"`
	Errors        []string  `json:"errors"`
	Failed        []string  `json:"failedRequests"` // "<status> <method> <url>" or "<net error> <method> <url>"
}

// TestDashboardInChromium: in Debian's headless Chromium, driven by
// playwright-core, a submitted job appears on the dashboard, its progress
// bar moves, the live preview plays through the bundled hls.js, and the
// final video plays; over the whole job the page logs no error and no
// request fails. The screenshot is saved as bench/dashboard.png.
func TestDashboardInChromium(t *testing.T) {
	chromium := systest.NeedChromium(t)
	sys := systest.Start(t, 30*time.Second, 2)
	// 12 segments of about two seconds each, slow enough to see the bar move
	// and the preview play.
	const job = "dashboard-job"
	spec := `{"id":"` + job + `","prompt":"a lighthouse in fog","durationFrames":288,"windowFrames":29,"overlapFrames":5,` +
		`"width":832,"height":480,"steps":200,"seed":3,"fps":24,"pool":"` + systest.Pool + `"}`
	shot := filepath.Join(chromium.Root, "bench", "dashboard.png")
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, err := chromium.Command(ctx, "dashboard.mjs", sys.DashboardURL(), job, shot)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("the dashboard driver: %v", err)
	}
	// The job is submitted once the page is open, so the row must appear
	// and the bar must move however slowly the browser started.
	ready := make(chan struct{})
	var stderr strings.Builder
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		lines := bufio.NewScanner(errPipe)
		for lines.Scan() {
			if lines.Text() == "spool-dashboard: ready" {
				close(ready)
				continue
			}
			stderr.WriteString(lines.Text() + "\n")
		}
	}()
	select {
	case <-ready:
		sys.Submit(t, spec)
	case <-drained:
	}
	<-drained
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
	if len(saw.Failed) > 0 {
		t.Errorf("failed requests of the page: %q", saw.Failed)
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
	if saw.Timeline != 12 {
		t.Errorf("%d segments on the timeline, want 12", saw.Timeline)
	}
	// Every segment's bar spans its work: of equal segments none shrinks to
	// a sliver (as those whose first report was DONE once did, a few
	// pixels). Bars are wall time, so a loaded machine widens some several
	// times over; a sliver is far narrower still.
	if saw.Narrowest < saw.Widest/12 {
		t.Errorf("timeline bars from %.0f to %.0f px wide for equal segments", saw.Narrowest, saw.Widest)
	}
	if len(saw.AxisTicks) != 5 || saw.AxisTicks[0] != "0.0 s" {
		t.Errorf("time axis %q, want 5 ticks from 0.0 s", saw.AxisTicks)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
}
