package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestResubmission: submitting a spec again under its id is a retry,
// answered as the first submission was; the same id with another spec is
// refused with 409 naming the id, never answered 202 for a job that is
// not what was asked for.
func TestResubmission(t *testing.T) {
	srv := api(t)
	id := fmt.Sprint("re-", time.Now().UnixNano()%1e9)
	spec := func(prompt string) string {
		return fmt.Sprintf(`{"id":"%s","prompt":"%s","durationFrames":13,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":2}`, id, prompt)
	}
	for i := range 2 {
		r, v := call(t, srv, "POST", "/generate", spec("a lighthouse"), true)
		if r.StatusCode != 202 || v["id"] != id {
			t.Fatalf("submission %d: %d %v, want 202 for %s", i+1, r.StatusCode, v, id)
		}
	}
	r, v := call(t, srv, "POST", "/generate", spec("a harbour"), true)
	msg, _ := v["message"].(string)
	if r.StatusCode != 409 || v["code"] != "already_exists" || v["field"] != "id" || !strings.Contains(msg, id) {
		t.Fatalf("another spec under the same id: %d %v, want 409 already_exists naming %s", r.StatusCode, v, id)
	}
	_, st := call(t, srv, "GET", "/status/"+id, "", true)
	if st["id"] != id {
		t.Fatalf("status of %s: %v", id, st)
	}
}
