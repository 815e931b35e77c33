package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
)

// Quotas are the default quotas of every tenant that the gateway enforces
// on submissions (POST /generate, POST /batches); a tenant's overrides in
// Postgres (PUT /tenants/{tenant}/quota) replace them. The running-segments
// quota is the dispatcher's (SPOOL_DISPATCHER_QUOTA_RUNNING_SEGMENTS): it
// holds segments back rather than refusing jobs. Embed it (anonymously) in
// a Config so that its variables are SPOOL_GATEWAY_QUOTA_*.
type Quotas struct {
	QueuedJobs   int   `envconfig:"GATEWAY_QUOTA_QUEUED_JOBS" default:"0" desc:"most jobs of one tenant not yet ended (submitted, queued or running); a submission past it is refused 429 resource_exhausted with Retry-After; 0: unlimited; a tenant's quota (PUT /tenants/{tenant}/quota) overrides it"`
	DailySeconds int64 `envconfig:"GATEWAY_QUOTA_DAILY_SECONDS" default:"0" desc:"most seconds of video one tenant may request per UTC day; a job that would pass it is refused 429 with Retry-After until the next UTC midnight (a live job once the day's quota is spent); 0: unlimited; a tenant's quota overrides it"`
}

func (q Quotas) validate() error {
	switch {
	case q.QueuedJobs < 0 || q.QueuedJobs > math.MaxInt32:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_QUOTA_QUEUED_JOBS %d: want 0..%d (0: unlimited)", q.QueuedJobs, math.MaxInt32)
	case q.DailySeconds < 0:
		return fmt.Errorf("gateway: SPOOL_GATEWAY_QUOTA_DAILY_SECONDS %d: want ≥ 0 (0: unlimited)", q.DailySeconds)
	}
	return nil
}

// codeExhausted is the error code of a 429: a quota or the rate limit.
const codeExhausted = "resource_exhausted"

// retryQueuedJobs is the Retry-After, seconds, of a submission refused by
// the queued-jobs quota: when one of the tenant's jobs ends is unknown.
const retryQueuedJobs = 10

// exhausted answers 429 resource_exhausted with Retry-After.
func exhausted(w http.ResponseWriter, retryAfter int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(retryAfter, 1)))
	writeError(w, http.StatusTooManyRequests, codeExhausted, msg)
}

// quotaError is a submission refused by a quota, with its Retry-After in
// seconds (≥ 1).
type quotaError struct {
	err        *store.QuotaError
	retryAfter int
}

func (e *quotaError) Error() string { return e.err.Error() }
func (e *quotaError) Unwrap() error { return e.err }

// retrySeconds is a wait as a Retry-After: whole seconds, rounded up, at
// least 1.
func retrySeconds(d time.Duration) int {
	if d <= time.Second {
		return 1
	}
	s := (d + time.Second - 1) / time.Second
	return int(min(s, math.MaxInt32))
}

// nextUTCDay is the UTC midnight after now.
func nextUTCDay(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// untilNextUTCDay is the Retry-After at now of a daily quota: the seconds
// to the next UTC midnight, rounded up, at least 1.
func untilNextUTCDay(now time.Time) int { return retrySeconds(nextUTCDay(now).Sub(now)) }

// requestedSeconds is the video job asks for, seconds; 0 for a live job.
func requestedSeconds(job jobspec.Job) float64 {
	if job.Live || job.FPS < 1 {
		return 0
	}
	return float64(job.TotalFrames) / float64(job.FPS)
}

// admit records sub as tenant's within the tenant's quotas (its overrides,
// else the gateway's defaults), counting seconds against its day by the
// gateway's clock. It returns what RecordSubmission does; a submission a
// quota refuses is recorded nowhere and its error a *quotaError (429).
func (g *Gateway) admit(ctx context.Context, tenant string, sub store.Submission, seconds float64) (store.Submission, bool, error) {
	now := g.now()
	sub.Tenant = tenant
	was, created, err := g.store.RecordSubmissionWithin(ctx, sub, store.SubmissionQuota{QueuedJobs: g.cfg.Quotas.QueuedJobs,
		DailySeconds: g.cfg.Quotas.DailySeconds, Seconds: seconds, Day: now})
	var qe *store.QuotaError
	if errors.As(err, &qe) {
		retry := retryQueuedJobs
		if qe.Quota == store.QuotaDailySeconds {
			retry = untilNextUTCDay(now)
		}
		return store.Submission{}, false, &quotaError{err: qe, retryAfter: retry}
	}
	return was, created, err
}

// quotaValues are a tenant's quotas: the body of PUT /tenants/{tenant}/quota
// (null or absent: the default), and what GET shows.
type quotaValues struct {
	QueuedJobs      *int   `json:"queued_jobs"`
	RunningSegments *int   `json:"running_segments"`
	DailySeconds    *int64 `json:"daily_seconds"`
}

// quotaView is a tenant's quotas as GET and PUT /tenants/{tenant}/quota
// answer them.
type quotaView struct {
	Tenant string `json:"tenant"`
	// Overrides are the tenant's own; null takes the default.
	Overrides quotaValues `json:"overrides"`
	// Limits are those in force, 0 meaning unlimited; running_segments is
	// null when it is the dispatcher's default
	// (SPOOL_DISPATCHER_QUOTA_RUNNING_SEGMENTS), which the gateway does
	// not know.
	Limits quotaValues `json:"limits"`
	Use    struct {
		QueuedJobs      int     `json:"queued_jobs"`
		RunningSegments int     `json:"running_segments"`
		DailySeconds    float64 `json:"daily_seconds"` // requested today (UTC)
	} `json:"use"`
	DayResetsAt time.Time  `json:"day_resets_at"` // the next UTC midnight
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
}

// quotaRoutes are the routes of tenants' quotas, with their handlers.
func (g *Gateway) quotaRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{"GET /tenants/{tenant}/quota": g.getQuota, "PUT /tenants/{tenant}/quota": g.putQuota}
}

// quotaTenant is the {tenant} of a quota route, checked; it answers the
// request when the caller may not manage quotas or the name is not allowed.
func quotaTenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !mayManageQuotas(r) {
		writeError(w, http.StatusForbidden, "permission_denied", "only an admin may read or change a tenant's quota")
		return "", false
	}
	t := r.PathValue("tenant")
	if !ident.Valid(t) {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "tenant", Message: fmt.Sprintf("tenant %q: want %s", t, ident.Rule)})
		return "", false
	}
	return t, true
}

// mayManageQuotas says whether r's caller may read and change tenants'
// quotas: an admin key.
func mayManageQuotas(r *http.Request) bool { return callerOf(r).Admin }

// getQuota shows a tenant's quotas: its overrides, the limits in force and
// its use now.
func (g *Gateway) getQuota(w http.ResponseWriter, r *http.Request) {
	tenant, ok := quotaTenant(w, r)
	if !ok {
		return
	}
	q, err := g.store.GetQuota(r.Context(), tenant)
	if err != nil {
		fail(w, err)
		return
	}
	g.answerQuota(r.Context(), w, q)
}

// putQuota replaces a tenant's overrides: each of queued_jobs,
// running_segments and daily_seconds is a limit ≥ 0 (0: unlimited), or
// null (absent) for the default.
func (g *Gateway) putQuota(w http.ResponseWriter, r *http.Request) {
	tenant, ok := quotaTenant(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_argument", "the body exceeds 4096 bytes")
		return
	}
	var v quotaValues
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(&v)
	switch t := bytes.TrimSpace(body); {
	case err != nil:
	case t[0] != '{': // null decodes into nothing: it is no quota
		err = errors.New("want a JSON object")
	case dec.More():
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf(`the body is not a quota, {"queued_jobs": N, "running_segments": N, "daily_seconds": N} (null: the default): %v`, err))
		return
	}
	for _, c := range []struct {
		field string
		v     *int64
		most  int64
	}{
		{"queued_jobs", widen(v.QueuedJobs), math.MaxInt32}, {"running_segments", widen(v.RunningSegments), math.MaxInt32},
		{"daily_seconds", v.DailySeconds, math.MaxInt64 / 1000},
	} {
		if c.v != nil && (*c.v < 0 || *c.v > c.most) {
			writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: c.field,
				Message: fmt.Sprintf("%s %d: want 0..%d (0: unlimited), or null for the default", c.field, *c.v, c.most)})
			return
		}
	}
	before, err := g.store.GetQuota(r.Context(), tenant)
	if err != nil {
		fail(w, err)
		return
	}
	q, err := g.store.SetQuota(r.Context(), store.Quota{Tenant: tenant, QueuedJobs: v.QueuedJobs, RunningSegments: v.RunningSegments,
		DailySeconds: v.DailySeconds})
	if err != nil {
		fail(w, err)
		return
	}
	g.auditQuotaChange(r, before, q)
	g.answerQuota(r.Context(), w, q)
}

func widen(v *int) *int64 {
	if v == nil {
		return nil
	}
	n := int64(*v)
	return &n
}

// auditQuotaChange records a change of a tenant's quotas in the audit
// log (quota.set): who changed it, from what, to what.
func (g *Gateway) auditQuotaChange(r *http.Request, before, after store.Quota) {
	g.audit(r.Context(), r, after.Tenant, actionQuotaSet, after.Tenant, map[string]any{
		"before": quotaValues{before.QueuedJobs, before.RunningSegments, before.DailySeconds}.String(),
		"after":  quotaValues{after.QueuedJobs, after.RunningSegments, after.DailySeconds}.String()})
}

// String is v as queued_jobs=N running_segments=default daily_seconds=N.
func (v quotaValues) String() string {
	f := func(p *int64) string {
		if p == nil {
			return "default"
		}
		return strconv.FormatInt(*p, 10)
	}
	return fmt.Sprintf("queued_jobs=%s running_segments=%s daily_seconds=%s", f(widen(v.QueuedJobs)), f(widen(v.RunningSegments)), f(v.DailySeconds))
}

// answerQuota answers with q's view: the limits in force and the use now.
func (g *Gateway) answerQuota(ctx context.Context, w http.ResponseWriter, q store.Quota) {
	now := g.now()
	use, err := g.store.QuotaUse(ctx, q.Tenant, now)
	if err != nil {
		fail(w, err)
		return
	}
	v := quotaView{Tenant: q.Tenant, Overrides: quotaValues{q.QueuedJobs, q.RunningSegments, q.DailySeconds}}
	queued, daily := g.cfg.Quotas.QueuedJobs, g.cfg.Quotas.DailySeconds
	if q.QueuedJobs != nil {
		queued = *q.QueuedJobs
	}
	if q.DailySeconds != nil {
		daily = *q.DailySeconds
	}
	v.Limits = quotaValues{QueuedJobs: &queued, RunningSegments: q.RunningSegments, DailySeconds: &daily}
	v.Use.QueuedJobs, v.Use.RunningSegments, v.Use.DailySeconds = use.QueuedJobs, use.RunningSegments, use.DailySeconds
	v.DayResetsAt = nextUTCDay(now)
	if !q.UpdatedAt.IsZero() {
		v.UpdatedAt = &q.UpdatedAt
	}
	writeJSON(w, http.StatusOK, v)
}
