package render_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// post posts body to path on the system's gateway, with its key, and
// wants 202.
func post(t *testing.T, sys *systest.System, path, body string) map[string]any {
	t.Helper()
	resp := sys.Do(t, "POST", path, "application/json", strings.NewReader(body))
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %v", path, resp.StatusCode, v)
	}
	return v
}

// TestHTTPSubmitEqualsOracleAndCancel: a job submitted over HTTP decodes
// to the oracle's frames; a running job cancelled over HTTP ends cancelled,
// its workers stop, and no segment is committed after the cancel.
func TestHTTPSubmitEqualsOracleAndCancel(t *testing.T) {
	sys := newSystem(t, 0, 2)
	spec := `{"id":"http-chain","prompt":"a harbour at night","durationFrames":40,"windowFrames":13,"overlapFrames":4,` +
		`"width":96,"height":64,"steps":3,"seed":5,"fps":24,"pool":"` + pool + `"}`
	post(t, sys.System, "/generate", spec)
	sys.compare(t, "http-chain", spec, 40)

	// 12 segments of 200 steps at 320×192: long enough to cancel mid-way.
	post(t, sys.System, "/generate", `{"id":"http-cancel","prompt":"a long storm","durationFrames":240,"windowFrames":25,`+
		`"overlapFrames":5,"width":320,"height":192,"steps":200,"fps":24,"pool":"`+pool+`"}`)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, _ := sys.Store.GetJob(ctx, "http-cancel")
		if j.SegmentsDone >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segment done: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	post(t, sys.System, "/jobs/http-cancel/cancel", "")
	deadline = time.Now().Add(10 * time.Second)
	var j store.Job
	for {
		j, _ = sys.Store.GetJob(ctx, "http-cancel")
		if j.State == store.JobCancelled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s after the cancel", j.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // what would run on after a lost cancel
	after, _ := sys.Store.GetJob(ctx, "http-cancel")
	if after.SegmentsDone != j.SegmentsDone || after.SegmentsDone >= after.SegmentsTotal || after.FinalKey != "" {
		t.Fatalf("after the cancel: %d then %d of %d segments done, final %q", j.SegmentsDone, after.SegmentsDone, after.SegmentsTotal, after.FinalKey)
	}
	kv, _ := sys.Bus.Workers(ctx)
	e, err := kv.Get(ctx, systest.Pool+".systest")
	if err == nil && strings.Contains(string(e.Value()), "http-cancel/") {
		t.Fatal("a worker still holds a task of the cancelled job")
	}
}
