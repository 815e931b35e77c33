package systest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// TestDashboardShowsInputsAndDeletion: the job view names the uploads a job
// is made from (image, audio) and how the image is fitted; once the job is
// deleted (DELETE /jobs/{id}) its row is marked, its title says so and the
// player says its video is gone, with no error and no failed request.
func TestDashboardShowsInputsAndDeletion(t *testing.T) {
	browser := systest.NeedChromium(t)
	sys := systest.Start(t, 0, 0)
	ctx := context.Background()
	job := fmt.Sprintf("inputs-dashboard-%d", time.Now().UnixNano()%1e9) // the database outlives one run of the test
	nj := store.NewJob{Job: store.Job{ID: job, Tenant: "default", Priority: 5, Pool: systest.Pool, Model: "ref", Mode: "chain",
		State: store.JobQueued, Spec: []byte(`{"prompt":"x","durationFrames":13,"image":"up-lighthouse","audio":"up-waves","fit":"FIT_PAD"}`),
		TotalFrames: 13, FPS: 24, Width: 96, Height: 64, SegmentsTotal: 1},
		Segments: []store.Segment{{Index: 0, Frames: 13, Prompt: "x", Pool: systest.Pool, State: store.SegPending}}}
	if _, err := sys.Store.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	if ok, err := sys.Store.SetJobState(ctx, job, []store.JobState{store.JobQueued}, store.JobFailed); !ok || err != nil {
		t.Fatal(ok, err)
	}
	resp := sys.Do(t, "DELETE", "/jobs/"+job, "", nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("DELETE: %s %s", resp.Status, body)
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, "inputs.mjs", sys.DashboardURL(), job)
	if err != nil {
		t.Fatalf("the dashboard driver: %v", err)
	}
	var saw struct {
		Inputs, Title, Caption, RowClass, RowState, Tag string
		Uploads                                         []string
		Errors                                          []string
		FailedRequests                                  []string
	}
	if err := json.Unmarshal(out, &saw); err != nil {
		t.Fatalf("the driver's report %q: %v", out, err)
	}
	t.Logf("saw %+v", saw)
	if len(saw.Errors) > 0 || len(saw.FailedRequests) > 0 {
		t.Errorf("errors in the page: %q; failed requests: %q", saw.Errors, saw.FailedRequests)
	}
	if want := "Made from image up-lighthouse (fitted by pad) and audio up-waves."; saw.Inputs != want ||
		!slices.Equal(saw.Uploads, []string{"up-lighthouse", "up-waves"}) {
		t.Errorf("inputs %q %q, want %q", saw.Inputs, saw.Uploads, want)
	}
	if saw.Tag != "deleted" || !strings.Contains(saw.RowClass, "deleted") || saw.RowState != "failed" {
		t.Errorf("row %q (state %q, tag %q): want it marked deleted, its state kept", saw.RowClass, saw.RowState, saw.Tag)
	}
	if !strings.Contains(saw.Title, "failed · deleted") || !strings.HasPrefix(saw.Caption, "deleted at ") {
		t.Errorf("title %q, caption %q: want the job shown deleted", saw.Title, saw.Caption)
	}
}
