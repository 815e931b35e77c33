package gateway_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

// waitState polls /status until the job is in one of states.
func waitState(t *testing.T, srv *httptest.Server, id string, states ...string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, v := call(t, srv, "GET", "/status/"+id, "", true)
		for _, s := range states {
			if v["state"] == s && (s != "succeeded" || v["download_url"] != nil) {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never got to %v: %v", id, states, v)
		}
	}
}

// TestDeleteJob: a finished job's objects all go; the job keeps its state
// and lineage, shows deleted_at in /status and the job list, and its files
// are 410 deleted; deleting again answers alike. A running job is 409 until
// it is cancelled and has ended.
func TestDeleteJob(t *testing.T) {
	srv := api(t)
	bl := devstacktest.Connect(t, 0).Blob
	ctx := context.Background()
	run := fmt.Sprint(time.Now().UnixNano() % 1e9) // the database outlives one run of the test
	done, long := "del-done-"+run, "del-long-"+run
	if r, v := call(t, srv, "POST", "/generate", small(`,"id":"`+done+`"`), true); r.StatusCode != 202 {
		t.Fatalf("generate: %d %v", r.StatusCode, v)
	}
	waitState(t, srv, done, "succeeded")
	prefix, _ := blob.JobPrefix(done)
	if objs, err := bl.List(ctx, prefix); err != nil || len(objs) < 4 {
		t.Fatalf("the job's objects: %d, %v", len(objs), err)
	}

	r, v := call(t, srv, "DELETE", "/jobs/"+done, "", true)
	if r.StatusCode != 200 || v["deleted_at"] == nil || v["objects_deleted"].(float64) < 4 || v["state"] != "succeeded" {
		t.Fatalf("delete: %d %v", r.StatusCode, v)
	}
	at := v["deleted_at"]
	if objs, err := bl.List(ctx, prefix); err != nil || len(objs) != 0 {
		t.Fatalf("left after the delete: %v, %v", objs, err)
	}
	_, s := call(t, srv, "GET", "/status/"+done, "", true)
	if s["state"] != "succeeded" || s["deleted_at"] == nil || s["video_url"] != nil || s["download_url"] != nil || s["preview_url"] != nil {
		t.Fatalf("status of a deleted job: %v", s)
	}
	for _, path := range []string{"/download/" + done, "/jobs/" + done + "/hls/index.m3u8"} {
		if r, v := call(t, srv, "GET", path, "", true); r.StatusCode != 410 || v["code"] != "deleted" {
			t.Fatalf("%s: %d %v", path, r.StatusCode, v)
		}
	}
	if r, v := call(t, srv, "GET", "/jobs/"+done+"/lineage", "", true); r.StatusCode != 200 || len(v["segments"].([]any)) != 2 {
		t.Fatalf("lineage of a deleted job: %d %v", r.StatusCode, v)
	}
	_, list := call(t, srv, "GET", "/jobs?limit=20", "", true)
	marked := false
	for _, j := range list["jobs"].([]any) {
		if j := j.(map[string]any); j["id"] == done {
			marked = j["deleted_at"] != nil
		}
	}
	if !marked {
		t.Fatalf("the job list does not mark the deleted job: %v", list)
	}
	if r, v := call(t, srv, "DELETE", "/jobs/"+done, "", true); r.StatusCode != 200 || v["deleted_at"] != at || v["objects_deleted"] != 0.0 {
		t.Fatalf("delete again: %d %v (first at %v)", r.StatusCode, v, at)
	}

	if r, v := call(t, srv, "POST", "/generate", `{"id":"`+long+`","prompt":"x","durationFrames":2400,"windowFrames":13,"overlapFrames":4,`+
		`"width":96,"height":64,"steps":3,"fps":24}`, true); r.StatusCode != 202 {
		t.Fatalf("generate: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "DELETE", "/jobs/"+long, "", true); r.StatusCode != 409 || v["code"] != "failed_precondition" ||
		!strings.Contains(v["message"].(string), "cancel it first") {
		t.Fatalf("delete of a running job: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "POST", "/jobs/"+long+"/cancel", "", true); r.StatusCode != 202 {
		t.Fatalf("cancel: %d %v", r.StatusCode, v)
	}
	waitState(t, srv, long, "cancelled")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r, v := call(t, srv, "DELETE", "/jobs/"+long, "", true)
		if r.StatusCode == 200 {
			break
		}
		// The stitcher may still be closing the preview.
		if r.StatusCode != 409 || r.Header.Get("Retry-After") == "" || time.Now().After(deadline) {
			t.Fatalf("delete of a cancelled job: %d %v", r.StatusCode, v)
		}
	}
	if objs, err := bl.List(ctx, blob.Key("jobs/"+long+"/")); err != nil || len(objs) != 0 {
		t.Fatalf("left of the cancelled job: %v, %v", objs, err)
	}
	if r, v := call(t, srv, "DELETE", "/jobs/no-such-job", "", true); r.StatusCode != 404 {
		t.Fatalf("no job: %d %v", r.StatusCode, v)
	}
}
