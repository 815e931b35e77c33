package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// acceptPools are the pools of the tests of a 202's guarantee.
const acceptPools = "acc:ref,sim"

// privateGateway is a gateway (development mode) over a stack of the
// test's own, NATS and Postgres, which the test may kill.
func privateGateway(t *testing.T) (*devstack.Stack, *store.Store, *httptest.Server) {
	t.Helper()
	st := devstacktest.Private(t, devstacktest.NATS, devstacktest.Postgres)
	ctx := context.Background()
	b, err := bus.Connect(ctx, st.NATSConfig(), bus.WithReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Declare(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, config.Postgres{DSN: config.Secret(st.PGDSN), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	g, err := gateway.New(testConfig(gateway.Config{Pools: acceptPools, MaxBody: 1 << 20}), b, s, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return st, s, serve(t, g, s)
}

func postSpec(t *testing.T, url, body string) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%d %q: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, resp.Header, v
}

func getStatus(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

const acceptSpec = `{"prompt":"a lantern in the fog","durationFrames":40,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,` +
	`"steps":3,"fps":24,"pool":"acc"`

// TestGenerate503WhenPostgresIsDown: with Postgres down, POST /generate
// and POST /batches answer 503 unavailable with a JSON error (code and
// message) and Retry-After, and record nothing: once Postgres is back,
// neither the job nor its submission exists.
func TestGenerate503WhenPostgresIsDown(t *testing.T) {
	st, s, srv := privateGateway(t)
	ctx := context.Background()
	// Stopped, not killed: the stack's Postgres runs without fsync, and a
	// kill could take the schema's last commits with it.
	if err := st.StopFast(devstack.PartPostgres); err != nil {
		t.Fatal(err)
	}
	code, h, body := postSpec(t, srv.URL+"/generate", acceptSpec+`,"id":"pg-down"}`)
	if code != http.StatusServiceUnavailable || body["code"] != "unavailable" || body["message"] == "" || h.Get("Retry-After") == "" {
		t.Fatalf("POST /generate with Postgres down: %d %v (Retry-After %q)", code, body, h.Get("Retry-After"))
	}
	code, _, body = postSpec(t, srv.URL+"/generate", acceptSpec+`}`) // no id: the gateway would name it
	if code != http.StatusServiceUnavailable || body["code"] != "unavailable" {
		t.Fatalf("POST /generate without an id, Postgres down: %d %v", code, body)
	}
	code, _, body = postSpec(t, srv.URL+"/batches?id=pg-down-batch", `[`+acceptSpec+`}]`)
	if code != http.StatusServiceUnavailable || body["code"] != "unavailable" || body["message"] == "" {
		t.Fatalf("POST /batches with Postgres down: %d %v", code, body)
	}
	if err := st.Restart(ctx, devstack.PartPostgres); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Postgres did not come back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range []string{"pg-down", "pg-down-batch-0"} {
		if _, err := s.GetSubmission(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("submission %s after a 503: %v", id, err)
		}
	}
	if n, err := s.CountWaitingSubmissions(ctx); err != nil || n != 0 {
		t.Fatalf("%d submissions recorded by 503s (%v)", n, err)
	}
	if code, _ := getStatus(t, srv.URL+"/status/pg-down"); code != http.StatusNotFound {
		t.Fatalf("GET /status of a job answered 503: %d", code)
	}
}

// TestGenerate202WhenNATSIsDown: with NATS down and Postgres up, POST
// /generate answers 202 at once; the job is in Postgres (GET /status shows
// it submitted); a retry of the same spec is the same submission, and
// another spec under its id is refused (409). Once NATS is back, empty, a
// dispatcher started then admits the job from Postgres.
func TestGenerate202WhenNATSIsDown(t *testing.T) {
	st, s, srv := privateGateway(t)
	ctx := context.Background()
	if err := st.Kill(devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	code, _, body := postSpec(t, srv.URL+"/generate", acceptSpec+`,"id":"nats-down"}`)
	if code != http.StatusAccepted || body["id"] != "nats-down" {
		t.Fatalf("POST /generate with NATS down: %d %v", code, body)
	}
	t.Logf("202 with NATS down in %v", time.Since(started))
	code, body = getStatus(t, srv.URL+"/status/nats-down")
	if code != http.StatusOK || body["state"] != "submitted" || body["pool"] != "acc" {
		t.Fatalf("GET /status of a submission: %d %v", code, body)
	}
	if code, _, body := postSpec(t, srv.URL+"/generate", acceptSpec+`,"id":"nats-down"}`); code != http.StatusAccepted || body["id"] != "nats-down" {
		t.Fatalf("retry: %d %v", code, body)
	}
	if code, _, body := postSpec(t, srv.URL+"/generate", acceptSpec+`,"id":"nats-down","seed":99}`); code != http.StatusConflict ||
		body["code"] != "already_exists" || body["field"] != "id" {
		t.Fatalf("another spec under the id: %d %v", code, body)
	}
	code, _, body = postSpec(t, srv.URL+"/generate", acceptSpec+`}`)
	anon, _ := body["id"].(string)
	if code != http.StatusAccepted || !strings.HasPrefix(anon, "g") {
		t.Fatalf("POST /generate without an id, NATS down: %d %v", code, body)
	}
	code, _, body = postSpec(t, srv.URL+"/batches?id=nats-down-batch", `[`+acceptSpec+`}]`)
	if code != http.StatusCreated {
		t.Fatalf("POST /batches with NATS down: %d %v", code, body)
	}

	if err := st.Wipe(devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	if err := st.Restart(ctx, devstack.PartNATS); err != nil {
		t.Fatal(err)
	}
	b, err := bus.Connect(ctx, st.NATSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	d, err := dispatcher.New(ctx, dispatcher.Config{Pools: acceptPools, MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond,
		ReconcileEvery: time.Hour, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 16, LiveAhead: 2, OutboxBatch: 64,
		SubmitBatch: 16, SegmentDeadline: time.Minute, RedriveAfter: 500 * time.Millisecond}, b, s, quiet())
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = d.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ids := []string{"nats-down", anon, "nats-down-batch-0"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := s.CountJobs(ctx, ids)
		if err == nil && n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs re-driven (%v)", n, len(ids), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range ids {
		j, err := s.GetJob(ctx, id)
		if err != nil || j.State != store.JobQueued || j.SegmentsTotal == 0 {
			t.Fatalf("job %s: %+v %v", id, j, err)
		}
	}
	if code, body := getStatus(t, srv.URL+"/status/nats-down"); code != http.StatusOK || body["state"] != "queued" {
		t.Fatalf("GET /status once re-driven: %d %v", code, body)
	}
}
