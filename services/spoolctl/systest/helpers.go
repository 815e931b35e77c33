package systest

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

// Do sends a request to the gateway at path (with its query) with the
// system's admin key; body may be nil, contentType "" for none.
func (s *System) Do(t testing.TB, method, path, contentType string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.API.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// DashboardURL is the dashboard's URL with the system's key in its
// fragment, as spoolctl dev prints it.
func (s *System) DashboardURL() string { return s.API.URL + "/#key=" + s.Key }

// Submit posts a JSON JobSpec to the gateway and wants 202.
func (s *System) Submit(t testing.TB, spec string) {
	t.Helper()
	resp := s.Do(t, "POST", "/generate", "application/json", strings.NewReader(spec))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		t.Fatalf("POST /generate: %s: %s", resp.Status, body)
	}
}

// WaitSucceeded waits up to limit for the job to succeed and returns it; a
// job that ends otherwise fails the test.
func (s *System) WaitSucceeded(t testing.TB, id string, limit time.Duration) store.Job {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		j, err := s.Store.GetJob(ctx, id)
		if err == nil && j.State == store.JobSucceeded {
			return j
		}
		if time.Now().After(deadline) || (err == nil && j.State.Terminal()) {
			t.Fatalf("job %s: %+v, %v", id, j, err)
		}
	}
}

// RepoRoot is the directory holding go.work, above the test's.
func RepoRoot(t testing.TB) string {
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
