package gateway

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/jobspec"
)

// RateLimit bounds each tenant's requests with a token bucket. Embed it
// (anonymously) in a Config so that its variables are SPOOL_GATEWAY_RATE
// and SPOOL_GATEWAY_BURST.
type RateLimit struct {
	Rate  float64 `envconfig:"GATEWAY_RATE" default:"0" desc:"requests per second each tenant may make, on average (a token bucket per tenant and gateway replica: N replicas let a tenant make N times as many); a request past it is answered 429 resource_exhausted with Retry-After; /health, /openapi.yaml and the dashboard's files are not limited; 0: unlimited"`
	Burst int     `envconfig:"GATEWAY_BURST" default:"0" desc:"requests a tenant may make at once, the bucket's size; 0: twice SPOOL_GATEWAY_RATE, at least 1"`
}

func (c RateLimit) validate() error {
	switch {
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("gateway: SPOOL_GATEWAY_RATE %v: want a number ≥ 0 (0: unlimited)", c.Rate)
	case c.Burst < 0:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_BURST %d: want ≥ 0 (0: twice the rate)", c.Burst)
	}
	return nil
}

// burst is c's bucket size: Burst, or twice the rate, at least 1.
func (c RateLimit) burst() int {
	if c.Burst > 0 {
		return c.Burst
	}
	return int(max(1, math.Ceil(2*c.Rate)))
}

// tenantKey is the context key of the tenant a request acts for.
type tenantKey struct{}

// contextWithTenant is ctx carrying the tenant a request acts for, as its
// authentication found it; requestTenant reads it.
func contextWithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// requestTenant is the tenant request r acts for: the one its
// authentication put in its context (contextWithTenant); without one, its
// ?tenant= when that is a valid name, else the default tenant.
func requestTenant(r *http.Request) string {
	if t, ok := r.Context().Value(tenantKey{}).(string); ok && t != "" {
		return t
	}
	if t := r.URL.Query().Get("tenant"); ident.Valid(t) {
		return t
	}
	return jobspec.DefaultTenant
}

// maxTenantBuckets bounds the buckets held at once. Past it, buckets are dropped
// before they are full again, which lets their tenants burst early: memory
// stays bounded whatever names requests carry.
const maxTenantBuckets = 100_000

// limiters holds a token bucket per tenant. A bucket left unused long
// enough to fill up again is dropped: a new one, full, is the same.
type limiters struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time // of its last request
}

// newLimiters is c's limiters, reading the time from now; nil when c
// leaves requests unlimited.
func newLimiters(c RateLimit, now func() time.Time) *limiters {
	if c.Rate <= 0 {
		return nil
	}
	return &limiters{limit: rate.Limit(c.Rate), burst: c.burst(), now: now, buckets: map[string]*bucket{}}
}

// refill is how long an empty bucket takes to fill up.
func (l *limiters) refill() time.Duration {
	return time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second))
}

// take takes a token from tenant's bucket. When there is none it takes
// nothing and returns how long until there is one (> 0).
func (l *limiters) take(tenant string) (wait time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[tenant]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[tenant] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() { // a burst of 0 never allows; burst() is ≥ 1
		return l.refill()
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // the refused request takes no token
		return d
	}
	return 0
}

// sweep drops the buckets unused for a refill, at most once a refill, and
// any number of them once there are maxTenantBuckets.
func (l *limiters) sweep(now time.Time) {
	full := l.refill()
	if now.Sub(l.swept) < full && len(l.buckets) < maxTenantBuckets {
		return
	}
	l.swept = now
	for t, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, t)
		}
	}
	for t := range l.buckets {
		if len(l.buckets) < maxTenantBuckets*9/10 {
			break
		}
		delete(l.buckets, t)
	}
}

// size is how many buckets are held.
func (l *limiters) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// limit answers 429 resource_exhausted, with the Retry-After the
// requester's bucket needs for a token, to a request past its tenant's
// rate limit, and passes the others to h.
func (g *Gateway) limit(h http.HandlerFunc) http.HandlerFunc {
	if g.limits == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		tenant := requestTenant(r)
		if wait := g.limits.take(tenant); wait > 0 {
			retry := retrySeconds(wait)
			exhausted(w, retry, fmt.Sprintf("tenant %s: more than %s requests/s with bursts of %d, its rate limit: retry after %d s",
				tenant, strconv.FormatFloat(float64(g.limits.limit), 'f', -1, 64), g.limits.burst, retry))
			return
		}
		h(w, r)
	}
}
