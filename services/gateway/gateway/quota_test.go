package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// quotaStack is a gateway configured by cfg and a dispatcher over a pool
// of the test's own that no worker serves, so that the jobs it records
// stay queued, on the shared stack.
type quotaStack struct {
	srv   *httptest.Server
	store *store.Store
	bus   *bus.Bus
	pool  string
	keys  map[string]string // a key of each tenant a request has named, by tenant
}

func newQuotaStack(t *testing.T, cfg gateway.Config, opts ...gateway.Option) quotaStack {
	t.Helper()
	c := devstacktest.Connect(t, 0)
	ctx := context.Background()
	pool := fmt.Sprintf("quota-%d", time.Now().UnixNano()%1e9)
	d, err := dispatcher.New(ctx, dispatcher.Config{Pools: pool + ":ref,sim", MaxAttempts: 3, RetryBackoff: 50 * time.Millisecond,
		ReconcileEvery: time.Hour, RunningStale: time.Hour, QueuedStale: time.Hour, PoolWindow: 16, LiveAhead: 2, OutboxBatch: 64,
		SubmitBatch: 16, SegmentDeadline: time.Minute}, c.Bus, c.Store, quiet())
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = d.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cfg.Pools, cfg.MaxBody = pool+":ref,sim", 1<<20
	g, err := gateway.New(testConfig(cfg), c.Bus, c.Store, c.Blob, quiet(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return quotaStack{srv: serve(t, g, c.Store), store: c.Store, bus: c.Bus, pool: pool, keys: map[string]string{}}
}

// do sends a request and returns the status, headers and JSON body. A
// request naming a tenant (?tenant=) is sent with a key of that tenant, so
// that it counts against the tenant's quotas and rate limit; others with
// the test's admin key.
func (q quotaStack) do(t *testing.T, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, q.srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tenant := req.URL.Query().Get("tenant"); tenant != "" {
		if q.keys[tenant] == "" {
			q.keys[tenant] = devstacktest.Key(t, q.store, tenant, false)
		}
		req.Header.Set("Authorization", "Bearer "+q.keys[tenant])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, resp.Header, v
}

// spec is a job of seconds s (24 fps) on the stack's pool.
func (q quotaStack) spec(id string, s int) string {
	return fmt.Sprintf(`{"id":%q,"prompt":"a quota","durationFrames":%d,"fps":24,"windowFrames":13,"overlapFrames":4,"width":64,"height":64,"pool":%q}`,
		id, 24*s, q.pool)
}

// submissions records the job ids published on spool.jobs.submit.
type submissions struct {
	mu  sync.Mutex
	ids map[string]bool
}

func watchSubmissions(t *testing.T, b *bus.Bus) *submissions {
	s := &submissions{ids: map[string]bool{}}
	sub, err := b.Conn().Subscribe(bus.SubjectJobSubmit, func(m *nats.Msg) {
		if spec, err := bus.DecodeJobSpec(m.Data, m.Header); err == nil {
			s.mu.Lock()
			s.ids[spec.GetId()] = true
			s.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls until the submission of id is seen.
func (s *submissions) waitFor(t *testing.T, id string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		seen := s.ids[id]
		s.mu.Unlock()
		if seen {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the submission of %s was never published", id)
		}
	}
}

func (s *submissions) seen(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// exhausted checks a 429: Retry-After of want seconds (any ≥ 1 when 0),
// and a resource_exhausted body whose message says says.
func exhausted(t *testing.T, what string, status int, h http.Header, v map[string]any, want int, says string) {
	t.Helper()
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	msg, _ := v["message"].(string)
	if status != http.StatusTooManyRequests || err != nil || retry < 1 || (want > 0 && retry != want) || v["code"] != "resource_exhausted" ||
		!strings.Contains(msg, says) {
		t.Fatalf("%s: %d, Retry-After %q, %v: want 429, Retry-After %d, resource_exhausted saying %q", what, status, h.Get("Retry-After"), v, want, says)
	}
}

// TestQueuedJobsQuotaAPI: a tenant at its queued-jobs quota gets 429 with
// Retry-After, and nothing is recorded or published for the refused job,
// while another tenant still submits; a batch's specs past the quota are
// refused each at its index; a job that ends frees a slot; an override
// (PUT /tenants/{tenant}/quota) beats the default, and GET shows it with
// the use.
func TestQueuedJobsQuotaAPI(t *testing.T) {
	q := newQuotaStack(t, gateway.Config{Quotas: gateway.Quotas{QueuedJobs: 2}})
	subs := watchSubmissions(t, q.bus)
	acme := q.pool + "-acme"
	for i := range 2 {
		if st, _, v := q.do(t, "POST", "/generate?tenant="+acme, q.spec(fmt.Sprintf("%s-%d", acme, i), 1)); st != 202 {
			t.Fatalf("job %d: %d %v", i, st, v)
		}
	}
	refused := acme + "-refused"
	st, h, v := q.do(t, "POST", "/generate?tenant="+acme, q.spec(refused, 1))
	exhausted(t, "the third job", st, h, v, 10, fmt.Sprintf("tenant %s: 2 queued jobs, the quota is 2", acme))

	other := q.pool + "-other"
	if st, _, v := q.do(t, "POST", "/generate?tenant="+other, q.spec(other+"-0", 1)); st != 202 {
		t.Fatalf("another tenant: %d %v", st, v)
	}
	// The other tenant's submission was published after the refusal, on
	// the same connection: had the refused one been published, it would
	// have come first.
	subs.waitFor(t, other+"-0")
	if subs.seen(refused) {
		t.Fatal("the refused job was published")
	}
	if _, err := q.store.GetSubmission(context.Background(), refused); err == nil {
		t.Fatal("the refused job's submission was recorded")
	}
	if st, _, _ := q.do(t, "GET", "/status/"+refused, ""); st != 404 {
		t.Fatalf("status of the refused job: %d, want 404", st)
	}

	st, h, v = q.do(t, "POST", "/batches?tenant="+acme, "["+q.spec("", 1)+","+q.spec("", 1)+"]")
	jobs, _ := v["jobs"].([]any)
	if st != http.StatusMultiStatus || h.Get("Retry-After") != "10" || len(jobs) != 2 {
		t.Fatalf("a batch at the quota: %d, Retry-After %q, %v", st, h.Get("Retry-After"), v)
	}
	for i, j := range jobs {
		e, _ := j.(map[string]any)["error"].(map[string]any)
		if e["code"] != "resource_exhausted" || !strings.Contains(e["message"].(string), "the quota is 2") {
			t.Fatalf("batch spec %d: %v", i, j)
		}
	}

	// A job that ends frees a slot.
	first := acme + "-0"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, _, _ := q.do(t, "POST", "/jobs/"+first+"/cancel", ""); st == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("could not cancel %s", first)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, _, v := q.do(t, "GET", "/status/"+first, ""); v["state"] == "cancelled" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never cancelled", first)
		}
	}
	if st, _, v := q.do(t, "POST", "/generate?tenant="+acme, q.spec(acme+"-2", 1)); st != 202 {
		t.Fatalf("after a job ended: %d %v", st, v)
	}

	st, _, v = q.do(t, "PUT", "/tenants/"+acme+"/quota", `{"queued_jobs":3,"running_segments":4}`)
	if lim, _ := v["limits"].(map[string]any); st != 200 || lim["queued_jobs"] != 3.0 || lim["running_segments"] != 4.0 || lim["daily_seconds"] != 0.0 {
		t.Fatalf("PUT quota: %d %v", st, v)
	}
	if st, _, v := q.do(t, "POST", "/generate?tenant="+acme, q.spec(acme+"-3", 1)); st != 202 {
		t.Fatalf("under the override: %d %v", st, v)
	}
	st, h, v = q.do(t, "POST", "/generate?tenant="+acme, q.spec(acme+"-4", 1))
	exhausted(t, "at the override", st, h, v, 10, fmt.Sprintf("tenant %s: 3 queued jobs, the quota is 3", acme))
	st, _, v = q.do(t, "GET", "/tenants/"+acme+"/quota", "")
	over, _ := v["overrides"].(map[string]any)
	use, _ := v["use"].(map[string]any)
	if st != 200 || v["tenant"] != acme || over["queued_jobs"] != 3.0 || over["daily_seconds"] != nil || use["queued_jobs"] != 3.0 ||
		use["daily_seconds"] != 4.0 {
		t.Fatalf("GET quota: %d %v", st, v)
	}
	if st, _, v := q.do(t, "PUT", "/tenants/"+acme+"/quota", `{}`); st != 200 || v["limits"].(map[string]any)["queued_jobs"] != 2.0 {
		t.Fatalf("PUT {} (back to the defaults): %d %v", st, v)
	}
	for _, c := range []struct{ path, body, field string }{
		{"/tenants/" + acme + "/quota", `{"queued_jobs":-1}`, "queued_jobs"},
		{"/tenants/" + acme + "/quota", `{"daily_seconds":1e30}`, ""},
		{"/tenants/" + acme + "/quota", `{"queued":1}`, ""},
		{"/tenants/Not%20A%20Tenant/quota", `{}`, "tenant"},
	} {
		st, _, v := q.do(t, "PUT", c.path, c.body)
		if st != 400 || v["code"] != "invalid_argument" || (c.field != "" && v["field"] != c.field) {
			t.Fatalf("PUT %s %s: %d %v", c.path, c.body, st, v)
		}
	}
}

// TestDailySecondsQuotaAPI: the job that would pass the day's quota is
// refused, with Retry-After pointing at the next UTC midnight of the
// gateway's clock; after midnight the tenant submits again; an override
// beats the default.
func TestDailySecondsQuotaAPI(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2031, 5, 6, 23, 59, 30, 500_000_000, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	q := newQuotaStack(t, gateway.Config{Quotas: gateway.Quotas{DailySeconds: 10}}, gateway.WithClock(clock))
	acme := q.pool + "-acme"
	for i := range 2 {
		if st, _, v := q.do(t, "POST", "/generate?tenant="+acme, q.spec(fmt.Sprintf("%s-%d", acme, i), 5)); st != 202 {
			t.Fatalf("job %d: %d %v", i, st, v)
		}
	}
	st, h, v := q.do(t, "POST", "/generate?tenant="+acme, q.spec(acme+"-2", 1))
	exhausted(t, "a second past the day's quota", st, h, v, 30, "10 s of video requested on 2031-05-06 (UTC), and this job asks 1 s more; the daily quota is 10 s")
	if _, err := q.store.GetSubmission(context.Background(), acme+"-2"); err == nil {
		t.Fatal("the refused job's submission was recorded")
	}
	if _, _, v := q.do(t, "GET", "/tenants/"+acme+"/quota", ""); v["use"].(map[string]any)["daily_seconds"] != 10.0 ||
		v["day_resets_at"] != "2031-05-07T00:00:00Z" {
		t.Fatalf("GET quota: %v", v)
	}
	mu.Lock()
	now = now.Add(30 * time.Second) // 00:00:00.5 the next day
	mu.Unlock()
	if st, _, v := q.do(t, "POST", "/generate?tenant="+acme, q.spec(acme+"-2", 5)); st != 202 {
		t.Fatalf("after midnight: %d %v", st, v)
	}
	st, h, v = q.do(t, "POST", "/generate?tenant="+acme, q.spec(acme+"-3", 6))
	exhausted(t, "past the new day's quota", st, h, v, 86400, "5 s of video requested on 2031-05-07")
	if st, _, v := q.do(t, "PUT", "/tenants/"+acme+"/quota", `{"daily_seconds":20}`); st != 200 {
		t.Fatalf("PUT quota: %d %v", st, v)
	}
	if st, _, v := q.do(t, "POST", "/generate?tenant="+acme, q.spec(acme+"-3", 6)); st != 202 {
		t.Fatalf("under the override: %d %v", st, v)
	}
}

// TestRateLimitAPI: past its burst a tenant gets 429 with the Retry-After
// its bucket needs, while another tenant and /health are served; once
// that time has passed (the gateway's clock) the tenant is served again.
func TestRateLimitAPI(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2031, 5, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	q := newQuotaStack(t, gateway.Config{RateLimit: gateway.RateLimit{Rate: 0.25, Burst: 3}}, gateway.WithClock(clock))
	acme, other := q.pool+"-acme", q.pool+"-other"
	for i := range 3 {
		if st, _, v := q.do(t, "GET", "/jobs?tenant="+acme, ""); st != 200 {
			t.Fatalf("request %d of the burst: %d %v", i, st, v)
		}
	}
	st, h, v := q.do(t, "GET", "/jobs?tenant="+acme, "")
	exhausted(t, "past the burst", st, h, v, 4, fmt.Sprintf("tenant %s: more than 0.25 requests/s with bursts of 3", acme))
	st, h, v = q.do(t, "POST", "/generate?tenant="+acme, q.spec(acme+"-0", 1))
	exhausted(t, "a submission past the burst", st, h, v, 4, "rate limit")
	if _, err := q.store.GetSubmission(context.Background(), acme+"-0"); err == nil {
		t.Fatal("a rate-limited submission was recorded")
	}
	if st, _, v := q.do(t, "GET", "/jobs?tenant="+other, ""); st != 200 {
		t.Fatalf("another tenant: %d %v", st, v)
	}
	for range 10 {
		if st, _, _ := q.do(t, "GET", "/health", ""); st != 200 {
			t.Fatalf("/health: %d", st)
		}
		if st, _, _ := q.do(t, "GET", "/openapi.yaml", ""); st != 200 {
			t.Fatalf("/openapi.yaml: %d", st)
		}
	}
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	st, h, v = q.do(t, "GET", "/jobs?tenant="+acme, "")
	exhausted(t, "3 s later", st, h, v, 1, "rate limit")
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if st, _, v := q.do(t, "GET", "/jobs?tenant="+acme, ""); st != 200 {
		t.Fatalf("after Retry-After: %d %v", st, v)
	}
}
