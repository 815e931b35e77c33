package systest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// TestDashboardMarksPromptChanges: the segment timeline of a job with a
// three-prompt timeline marks where each prompt took over, on the video's
// time axis and on the bar of the segment it begins, with the time the cue
// asked for beside the time it landed.
func TestDashboardMarksPromptChanges(t *testing.T) {
	browser := systest.NeedChromium(t)
	sys := systest.Start(t, 30*time.Second, 2)
	// 96 frames in windows of 25 overlapping by 5: boundaries at 0, 25, 45,
	// 65, 85. At 24 fps the cues ask for frames 36 and 72 and land on 45
	// (1.875 s, segment 2) and 65 (2.708 s, segment 3).
	const job = "cues-dashboard"
	sys.Submit(t, `{"id":"`+job+`","timeline":[{"fromS":0,"prompt":"dusk"},{"fromS":1.5,"prompt":"night"},{"fromS":3,"prompt":"dawn"}],`+
		`"durationFrames":96,"windowFrames":25,"overlapFrames":5,"width":96,"height":64,"steps":2,"seed":3,"fps":24,"pool":"`+systest.Pool+`"}`)
	sys.WaitSucceeded(t, job, time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, "cues.mjs", sys.DashboardURL(), job)
	if err != nil {
		t.Fatalf("the dashboard driver: %v", err)
	}
	var saw struct {
		Marks []struct {
			Text, Title string
			X           float64
		}
		CueBars []struct{ Seg, Title string }
		Errors  []string
	}
	if err := json.Unmarshal(out, &saw); err != nil {
		t.Fatalf("the driver's report %q: %v", out, err)
	}
	t.Logf("saw %+v", saw)
	if len(saw.Errors) > 0 {
		t.Errorf("errors in the page: %q", saw.Errors)
	}
	want := []struct{ text, title string }{
		{"0.00 s", "prompt “dusk” from 0.00 s (frame 0, segment 0); asked for 0.00 s (frame 0)"},
		{"1.88 s", "prompt “night” from 1.88 s (frame 45, segment 2); asked for 1.50 s (frame 36)"},
		{"2.71 s", "prompt “dawn” from 2.71 s (frame 65, segment 3); asked for 3.00 s (frame 72)"},
	}
	if len(saw.Marks) != len(want) {
		t.Fatalf("%d prompt marks, want %d", len(saw.Marks), len(want))
	}
	for i, w := range want {
		if m := saw.Marks[i]; m.Text != w.text || m.Title != w.title || (i > 0 && m.X <= saw.Marks[i-1].X) {
			t.Errorf("mark %d: %+v, want %q titled %q, right of the one before", i, m, w.text, w.title)
		}
	}
	// The bars stand on their workers' lanes, in any order.
	bars := map[string]string{}
	for _, b := range saw.CueBars {
		bars[b.Seg] = b.Title
	}
	if len(saw.CueBars) != 2 || !strings.Contains(bars["2"], "“night” from 1.88 s") || !strings.Contains(bars["3"], "“dawn” from 2.71 s") {
		t.Errorf("marked segment bars %+v, want segments 2 (night) and 3 (dawn)", saw.CueBars)
	}
}
