package gateway_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestStatusFiguresAreWhatWasMade: /status reports the frames, segments and
// duration of what a job made, whatever its end: the final video's for a
// job that succeeded (a stopped live job included), the committed segments'
// for one cancelled midway; frames_total is the plan's (0 when live).
func TestStatusFiguresAreWhatWasMade(t *testing.T) {
	// A pool of this run's: work other tests leave on "default" (jobs made
	// straight in Postgres, tasks of stopped workers) never delays these.
	pool := fmt.Sprintf("status-%d", time.Now().UnixNano()%1e9)
	srv := apiOver(t, pool+":ref,sim", worker.Config{ID: "gw-" + pool, Pool: pool, Backend: "ref", Slots: 2, Heartbeat: time.Second})
	clients := devstacktest.Connect(t, 0)
	st := clients.Store
	ctx := context.Background()
	// What the store says of a job that does not get on: its segments.
	segments := func(job string) string {
		segs, err := st.ListSegments(ctx, job)
		if err != nil {
			return err.Error()
		}
		out := ""
		for _, s := range segs {
			out += fmt.Sprintf(" %d:%s/a%d", s.Index, s.State, s.Attempts)
		}
		return out
	}
	cases := []struct {
		name, id, spec string
		stopAfter      int  // segments committed before the job is cancelled (or fails); 0 runs it to its end
		fail           bool // a segment fails for good instead of a cancel
		state          string
	}{
		{"succeeded", "st-done", `"durationFrames":30`, 0, false, "succeeded"},
		{"cancelled midway", "st-cancel", `"durationFrames":2400`, 2, false, "cancelled"},
		{"failed midway", "st-fail", `"durationFrames":2400`, 2, true, "failed"},
		{"live stopped", "st-live", `"live":true`, 2, false, "succeeded"},
	}
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9) // the database outlives one run of the test
	for _, c := range cases {
		c.id += "-" + suffix
		t.Run(c.name, func(t *testing.T) {
			r, v := call(t, srv, "POST", "/generate", fmt.Sprintf(`{"id":"%s","prompt":"a lighthouse","windowFrames":13,"overlapFrames":4,`+
				`"width":96,"height":64,"steps":3,"fps":24,"pool":"%s",%s}`, c.id, pool, c.spec), true)
			if r.StatusCode != 202 {
				t.Fatalf("generate: %d %v", r.StatusCode, v)
			}
			wait := func(what string, cond func(map[string]any) bool) map[string]any {
				t.Helper()
				for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					_, v := call(t, srv, "GET", "/status/"+c.id, "", true)
					if cond(v) {
						return v
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s never happened: %v; segments:%s", what, v, segments(c.id))
					}
				}
			}
			if c.stopAfter > 0 {
				// Chain segments can commit out of order (segment k+1 starts at
				// k's TAIL_READY and may finish first), so the wait is for the
				// first stopAfter segments, and the segment made to fail is the
				// first not committed.
				var next int
				for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if next = committedPrefix(t, st, c.id); next >= c.stopAfter {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("segments 0..%d were never committed; segments:%s", c.stopAfter-1, segments(c.id))
					}
				}
				if c.fail { // the next segment's worker reports a permanent failure
					if _, err := clients.Bus.PublishResult(ctx, &spoolv1.SegmentResult{JobId: c.id, Index: uint32(next), Attempt: 1, Pool: pool,
						Phase: spoolv1.Phase_PHASE_FAILED, ErrorClass: spoolv1.ErrorClass_ERROR_CLASS_PERMANENT, ErrorMessage: "broken"}); err != nil {
						t.Fatal(err)
					}
				} else if r, v := call(t, srv, "POST", "/jobs/"+c.id+"/cancel", "", true); r.StatusCode != 202 {
					t.Fatalf("cancel: %d %v", r.StatusCode, v)
				}
			}
			v = wait("the end", func(v map[string]any) bool {
				return v["state"] == c.state && (c.state != "succeeded" || v["download_url"] != nil)
			})
			j, err := st.GetJob(ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			segs, err := st.ListSegments(ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			// made: the new frames of the committed segments. A video holds
			// the committed segments from the first on, up to the first that
			// is not (a stopped live chain can have a later segment committed
			// and an earlier one, still encoding when the stop came,
			// cancelled): prefix counts those.
			var made, prefix int64
			done, prefixDone := 0, 0
			for _, s := range segs {
				if s.State == store.SegDone {
					made, done = made+int64(s.Frames-s.Overlap-s.Trim), done+1
					if prefixDone == s.Index {
						prefix, prefixDone = prefix+int64(s.Frames-s.Overlap-s.Trim), prefixDone+1
					}
				}
			}
			want := map[string]float64{"frames": float64(made), "frames_total": float64(j.TotalFrames), "segments_done": float64(done),
				"duration_s": float64(made) / 24}
			if j.FinalKey != "" {
				made = prefix
				want["frames"], want["duration_s"] = float64(j.FinalFrames), float64(j.FinalFrames)/24
				want["segments_total"], want["segments_done"] = float64(prefixDone), float64(prefixDone)
			}
			for k, w := range want {
				got, _ := v[k].(float64)
				if math.Abs(got-w) > 1e-9 {
					t.Errorf("%s: %s %v, want %v (status %v)", c.id, k, v[k], w, v)
				}
			}
			if made == 0 || (j.FinalKey != "" && j.FinalFrames != made) {
				t.Fatalf("%s: %d frames committed from the first segment on, the final video has %d", c.id, made, j.FinalFrames)
			}
		})
	}
}

// committedPrefix is how many segments of job, from the first on, are
// committed.
func committedPrefix(t *testing.T, st *store.Store, job string) int {
	t.Helper()
	segs, err := st.ListSegments(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range segs {
		if s.Index != n || s.State != store.SegDone {
			break
		}
		n++
	}
	return n
}
