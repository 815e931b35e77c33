package gateway

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRetrySeconds: a wait becomes the least whole number of seconds, at
// least 1, that covers it.
func TestRetrySeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{-time.Second, 1}, {0, 1}, {1, 1}, {time.Second, 1}, {time.Second + 1, 2}, {1500 * time.Millisecond, 2}, {24 * time.Hour, 86400}} {
		if got := retrySeconds(c.d); got != c.want {
			t.Errorf("retrySeconds(%v) = %d, want %d", c.d, got, c.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		d := time.Duration(rng.Int64N(int64(48 * time.Hour)))
		r := retrySeconds(d)
		if r < 1 || time.Duration(r)*time.Second < d || (r > 1 && time.Duration(r-1)*time.Second >= d) {
			t.Fatalf("retrySeconds(%v) = %d: not the least whole second ≥ 1 covering it", d, r)
		}
	}
}

// TestUntilNextUTCDay: the Retry-After of a daily quota reaches the next
// UTC midnight, and its second before does not, from any instant in any
// zone.
func TestUntilNextUTCDay(t *testing.T) {
	midnight := time.Date(2031, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		now  time.Time
		want int
	}{
		{midnight, 86400}, {midnight.Add(-time.Nanosecond), 1}, {midnight.Add(-1500 * time.Millisecond), 2},
		{midnight.Add(23*time.Hour + 59*time.Minute + 30*time.Second + 500*time.Millisecond), 30},
		{time.Date(2031, 12, 31, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*3600)), 3600}, // 23:00 UTC the day before
	} {
		if got := untilNextUTCDay(c.now); got != c.want {
			t.Errorf("untilNextUTCDay(%v) = %d, want %d", c.now, got, c.want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		now := time.Unix(0, rng.Int64N(4e18)).In(time.FixedZone("z", (rng.IntN(27)-12)*3600))
		r := untilNextUTCDay(now)
		next := nextUTCDay(now)
		if next.Hour() != 0 || next.Minute() != 0 || next.Second() != 0 || next.Nanosecond() != 0 || !next.After(now) ||
			next.Sub(now) > 24*time.Hour {
			t.Fatalf("nextUTCDay(%v) = %v: not the next UTC midnight", now, next)
		}
		at := now.Add(time.Duration(r) * time.Second)
		if r < 1 || r > 86400 || at.Before(next) || (r > 1 && now.Add(time.Duration(r-1)*time.Second).Compare(next) >= 0) {
			t.Fatalf("untilNextUTCDay(%v) = %d: next midnight %v", now, r, next)
		}
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestLimiterRetryAfter: once a tenant's burst is spent, its Retry-After
// (the reservation's delay, rounded up) is the first whole second at which
// a request passes again; refused requests take no token; another tenant
// has its own bucket.
func TestLimiterRetryAfter(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		c := RateLimit{Rate: 0.05 + rng.Float64()*50, Burst: rng.IntN(20)}
		clock := &fakeClock{t: time.Unix(1_900_000_000, rng.Int64N(1e9))}
		l := newLimiters(c, clock.now)
		for i := range c.burst() {
			if w := l.take("acme"); w != 0 {
				t.Fatalf("%+v: request %d of the burst %d refused (%v)", c, i, c.burst(), w)
			}
		}
		wait := l.take("acme")
		if wait <= 0 {
			t.Fatalf("%+v: a request past the burst passed", c)
		}
		if l.take("beta") != 0 {
			t.Fatalf("%+v: another tenant was refused", c)
		}
		r := retrySeconds(wait)
		start := clock.t
		if r > 1 {
			clock.t = start.Add(time.Duration(r-1) * time.Second)
			if l.take("acme") == 0 {
				t.Fatalf("%+v: passed at Retry-After − 1 s (%d s): the wait was %v", c, r-1, wait)
			}
		}
		clock.t = start.Add(time.Duration(r) * time.Second)
		if w := l.take("acme"); w != 0 {
			t.Fatalf("%+v: refused at Retry-After (%d s, wait %v), for %v more", c, r, wait, w)
		}
	}
}

// TestLimiterForgetsIdleTenants: a bucket unused long enough to fill up
// is dropped, which changes nothing for its tenant; however many tenants
// come, at most maxTenantBuckets buckets are held.
func TestLimiterForgetsIdleTenants(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	l := newLimiters(RateLimit{Rate: 10, Burst: 10}, clock.now) // a bucket fills in 1 s
	for i := range 1000 {
		l.take(fmt.Sprintf("t%d", i))
	}
	for range 10 {
		l.take("busy")
	}
	if l.take("busy") == 0 {
		t.Fatal("the busy tenant's burst is not spent")
	}
	clock.t = clock.t.Add(time.Second)
	l.take("other")
	if n := l.size(); n != 1 {
		t.Fatalf("%d buckets after a refill: want only the new one", n)
	}
	for i := range 10 {
		if w := l.take("busy"); w != 0 {
			t.Fatalf("the busy tenant, whose bucket was dropped full, refused at request %d", i)
		}
	}

	slow := newLimiters(RateLimit{Rate: 0.001, Burst: 1}, clock.now) // fills in 1000 s
	for i := range maxTenantBuckets + maxTenantBuckets/2 {
		slow.take(fmt.Sprintf("t%d", i))
		if i%1000 == 0 && slow.size() > maxTenantBuckets {
			t.Fatalf("%d buckets held", slow.size())
		}
	}
	if n := slow.size(); n > maxTenantBuckets {
		t.Fatalf("%d buckets held: want at most %d", n, maxTenantBuckets)
	}
}

// TestRequestTenant: the tenant authentication put in the context comes
// first, then a valid ?tenant=, then the default tenant.
func TestRequestTenant(t *testing.T) {
	r := httptest.NewRequest("GET", "/jobs?tenant=acme", nil)
	if got := requestTenant(r); got != "acme" {
		t.Fatalf("?tenant=acme: %q", got)
	}
	if got := requestTenant(r.WithContext(contextWithTenant(r.Context(), "beta"))); got != "beta" {
		t.Fatalf("authenticated as beta: %q", got)
	}
	for _, q := range []string{"", "?tenant=Bad%20Name"} {
		if got := requestTenant(httptest.NewRequest("GET", "/jobs"+q, nil)); got != "default" {
			t.Fatalf("%q: %q, want default", q, got)
		}
	}
}

// TestOpenAPIDocumentsTooManyRequests: every operation that needs the
// token (and so is rate limited) documents its 429.
func TestOpenAPIDocumentsTooManyRequests(t *testing.T) {
	type op struct {
		name           string
		public, has429 bool
	}
	var ops []*op
	var cur *op
	path := ""
	for _, line := range strings.Split(string(openapi), "\n") {
		switch {
		case strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path, cur = strings.TrimSuffix(strings.TrimSpace(line), ":"), nil
		case path != "" && (line == "    get:" || line == "    post:" || line == "    put:" || line == "    delete:"):
			cur = &op{name: strings.TrimSpace(line) + " " + path}
			ops = append(ops, cur)
		case cur != nil && strings.TrimSpace(line) == "security: []":
			cur.public = true
		case cur != nil && strings.HasPrefix(line, `        "429"`):
			cur.has429 = true
		}
	}
	if len(ops) != len(Routes) {
		t.Fatalf("found %d operations, the gateway serves %d routes", len(ops), len(Routes))
	}
	for _, o := range ops {
		if !o.public && !o.has429 {
			t.Errorf("%s is rate limited but documents no 429", o.name)
		}
		if o.public && o.has429 {
			t.Errorf("%s is public, never limited, yet documents a 429", o.name)
		}
	}
}
