package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Quota is a tenant's overrides of the services' default quotas. A nil
// field takes the default; 0 means unlimited.
type Quota struct {
	Tenant string
	// QueuedJobs bounds the tenant's jobs not yet ended: submitted (no
	// dispatcher has recorded them), queued or running.
	QueuedJobs *int
	// RunningSegments bounds the tenant's segments being generated at
	// once, in every pool: queued for a worker or running, until their
	// tail is handed off. Admission holds the tenant's further segments
	// back (AdmitReady); they wait, they never fail.
	RunningSegments *int
	// DailySeconds bounds the seconds of video the tenant requests per UTC
	// day.
	DailySeconds *int64
	// UpdatedAt is when the overrides last changed; zero when the tenant
	// has none.
	UpdatedAt time.Time
}

// The quotas, as QuotaError names them.
const (
	QuotaQueuedJobs      = "queued_jobs"
	QuotaRunningSegments = "running_segments"
	QuotaDailySeconds    = "daily_seconds"
)

// ErrQuotaExceeded is what a *QuotaError wraps: a submission would pass one
// of its tenant's quotas.
var ErrQuotaExceeded = errors.New("quota exceeded")

// QuotaError is a submission refused by one of its tenant's quotas.
type QuotaError struct {
	Tenant string
	Quota  string  // QuotaQueuedJobs or QuotaDailySeconds
	Use    float64 // the tenant's use before the submission: jobs, or seconds requested on Day
	Ask    float64 // what the submission adds: 1 job, or its seconds (0 for a live job)
	Limit  int64
	Day    time.Time // QuotaDailySeconds only: the UTC day counted
}

func (e *QuotaError) Error() string {
	switch e.Quota {
	case QuotaQueuedJobs:
		jobs := "jobs"
		if e.Use == 1 {
			jobs = "job"
		}
		return fmt.Sprintf("tenant %s: %d queued %s, the quota is %d", e.Tenant, int64(e.Use), jobs, e.Limit)
	case QuotaDailySeconds:
		if e.Ask == 0 {
			return fmt.Sprintf("tenant %s: %s s of video requested on %s (UTC), the daily quota is %d s; a live job needs some left",
				e.Tenant, seconds(e.Use), e.Day.Format(time.DateOnly), e.Limit)
		}
		return fmt.Sprintf("tenant %s: %s s of video requested on %s (UTC), and this job asks %s s more; the daily quota is %d s",
			e.Tenant, seconds(e.Use), e.Day.Format(time.DateOnly), seconds(e.Ask), e.Limit)
	}
	return fmt.Sprintf("tenant %s: quota %s: %s used, the quota is %d", e.Tenant, e.Quota, seconds(e.Use), e.Limit)
}

func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// seconds formats s with at most one decimal.
func seconds(s float64) string { return strconv.FormatFloat(math.Round(s*10)/10, 'f', -1, 64) }

// GetQuota returns tenant's overrides: a Quota with every field nil when it
// has none.
func (s *Store) GetQuota(ctx context.Context, tenant string) (Quota, error) {
	q := Quota{Tenant: tenant}
	err := s.pool.QueryRow(ctx, `SELECT queued_jobs, running_segments, daily_seconds, updated_at FROM quotas WHERE tenant = $1`,
		tenant).Scan(&q.QueuedJobs, &q.RunningSegments, &q.DailySeconds, &q.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Quota{Tenant: tenant}, nil
	}
	if err != nil {
		return Quota{}, fmt.Errorf("store: quota of %s: %w", tenant, err)
	}
	return q, nil
}

// SetQuota replaces q.Tenant's overrides with q's and returns them as
// stored; a Quota with every field nil removes them. A negative value is
// an error.
func (s *Store) SetQuota(ctx context.Context, q Quota) (Quota, error) {
	if (q.QueuedJobs != nil && *q.QueuedJobs < 0) || (q.RunningSegments != nil && *q.RunningSegments < 0) ||
		(q.DailySeconds != nil && *q.DailySeconds < 0) {
		return Quota{}, fmt.Errorf("store: quota of %s: a limit is negative: want ≥ 0 (0: unlimited)", q.Tenant)
	}
	if q.QueuedJobs == nil && q.RunningSegments == nil && q.DailySeconds == nil {
		if _, err := s.pool.Exec(ctx, `DELETE FROM quotas WHERE tenant = $1`, q.Tenant); err != nil {
			return Quota{}, fmt.Errorf("store: quota of %s: %w", q.Tenant, err)
		}
		return Quota{Tenant: q.Tenant}, nil
	}
	out := Quota{Tenant: q.Tenant}
	err := s.pool.QueryRow(ctx, `INSERT INTO quotas (tenant, queued_jobs, running_segments, daily_seconds) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant) DO UPDATE SET queued_jobs = excluded.queued_jobs, running_segments = excluded.running_segments,
			daily_seconds = excluded.daily_seconds, updated_at = now()
		RETURNING queued_jobs, running_segments, daily_seconds, updated_at`,
		q.Tenant, q.QueuedJobs, q.RunningSegments, q.DailySeconds).Scan(&out.QueuedJobs, &out.RunningSegments, &out.DailySeconds, &out.UpdatedAt)
	if err != nil {
		return Quota{}, fmt.Errorf("store: quota of %s: %w", q.Tenant, err)
	}
	return out, nil
}

// QuotaUse is what a tenant uses of its quotas now.
type QuotaUse struct {
	QueuedJobs      int     // jobs submitted, queued or running
	RunningSegments int     // segments queued or running, in every pool
	DailySeconds    float64 // seconds of video requested on the day asked for
}

// QuotaUse reads tenant's use of its quotas, its requested seconds those of
// UTC day day (any time of it).
func (s *Store) QuotaUse(ctx context.Context, tenant string, day time.Time) (QuotaUse, error) {
	var u QuotaUse
	var ms int64
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM submissions WHERE tenant = $1 AND admitted_at IS NULL)
		  + (SELECT count(*) FROM jobs WHERE tenant = $1 AND state IN ('queued', 'running')),
		(SELECT count(*) FROM segments s JOIN jobs j ON j.id = s.job_id
		  WHERE j.tenant = $1 AND j.state IN ('queued', 'running') AND s.state IN ('queued', 'running')),
		coalesce((SELECT requested_ms FROM tenant_days WHERE tenant = $1 AND day = $2), 0)`,
		tenant, utcDay(day)).Scan(&u.QueuedJobs, &u.RunningSegments, &ms)
	if err != nil {
		return QuotaUse{}, fmt.Errorf("store: quota use of %s: %w", tenant, err)
	}
	u.DailySeconds = float64(ms) / 1000
	return u, nil
}

// SubmissionQuota is what RecordSubmissionWithin checks a submission
// against.
type SubmissionQuota struct {
	// QueuedJobs and DailySeconds are the defaults, which the tenant's
	// overrides (SetQuota) replace; 0 means unlimited.
	QueuedJobs   int
	DailySeconds int64
	// Seconds is the video the submission requests; 0 for a live job,
	// whose length is unknown: it is refused only once the day's quota is
	// spent.
	Seconds float64
	// Day is the UTC day the submission counts in (any time of it): the
	// caller's clock decides it.
	Day time.Time
}

// utcDay is the UTC date of t, as a Postgres date takes it.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// RecordSubmissionWithin is RecordSubmission under the submission's
// tenant's quotas, in one transaction: the submission is recorded, and its
// seconds counted in the tenant's day, only if the tenant's jobs not yet
// ended stay within its queued-jobs quota and its seconds requested on
// q.Day within its daily quota. Otherwise nothing is recorded and the error
// is a *QuotaError (errors.Is ErrQuotaExceeded) saying which quota, the
// use and the limit. A submission whose job id is taken already is a retry
// or a conflict, as for RecordSubmission: the earlier one comes back and
// nothing is checked or counted. The tenant's submissions are serialised
// while a queued-jobs quota applies, so concurrent ones cannot pass it
// together.
func (s *Store) RecordSubmissionWithin(ctx context.Context, sub Submission, q SubmissionQuota) (Submission, bool, error) {
	var got Submission
	created := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		created = false
		var queued int
		var daily int64
		err := tx.QueryRow(ctx, `SELECT coalesce(max(queued_jobs), $2), coalesce(max(daily_seconds), $3) FROM quotas WHERE tenant = $1`,
			sub.Tenant, q.QueuedJobs, q.DailySeconds).Scan(&queued, &daily)
		if err != nil {
			return fmt.Errorf("quota of %s: %w", sub.Tenant, err)
		}
		got, err = scanSubmission(tx.QueryRow(ctx, `INSERT INTO submissions (job_id, tenant, spec, traceparent)
			VALUES ($1, $2, $3, $4) ON CONFLICT (job_id) DO NOTHING RETURNING `+submissionColumns,
			sub.JobID, sub.Tenant, sub.Spec, nullable(sub.Traceparent)))
		if errors.Is(err, pgx.ErrNoRows) {
			got, err = scanSubmission(tx.QueryRow(ctx, `SELECT `+submissionColumns+` FROM submissions WHERE job_id = $1`, sub.JobID))
			if err != nil {
				return fmt.Errorf("submission %s: %w", sub.JobID, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("record submission %s: %w", sub.JobID, err)
		}
		created = true
		if queued > 0 {
			if err := checkQueued(ctx, tx, sub.Tenant, queued); err != nil {
				return err
			}
		}
		return countDay(ctx, tx, sub.Tenant, q, daily)
	})
	if err != nil {
		var qe *QuotaError
		if errors.As(err, &qe) {
			return Submission{}, false, qe
		}
		return Submission{}, false, fmt.Errorf("store: record submission %s: %w", sub.JobID, err)
	}
	return got, created, nil
}

// checkQueued refuses a submission just inserted (counted) when the
// tenant's jobs not yet ended pass limit. The lock serialises the
// tenant's checks: each sees the submissions committed before it.
func checkQueued(ctx context.Context, tx pgx.Tx, tenant string, limit int) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('spool.quota.' || $1))`, tenant); err != nil {
		return fmt.Errorf("quota lock of %s: %w", tenant, err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM submissions WHERE tenant = $1 AND admitted_at IS NULL)
		  + (SELECT count(*) FROM jobs WHERE tenant = $1 AND state IN ('queued', 'running'))`, tenant).Scan(&n); err != nil {
		return fmt.Errorf("queued jobs of %s: %w", tenant, err)
	}
	if n > limit {
		return &QuotaError{Tenant: tenant, Quota: QuotaQueuedJobs, Use: float64(n - 1), Ask: 1, Limit: int64(limit)}
	}
	return nil
}

// countDay adds the submission's seconds to its tenant's day, unless the
// day would then pass limit (0: unlimited). A live job (no seconds) passes
// while some of the day's quota is left.
func countDay(ctx context.Context, tx pgx.Tx, tenant string, q SubmissionQuota, limit int64) error {
	ask := int64(math.Round(max(q.Seconds, 0) * 1000))
	var total int64
	if err := tx.QueryRow(ctx, `INSERT INTO tenant_days (tenant, day, requested_ms) VALUES ($1, $2, $3)
		ON CONFLICT (tenant, day) DO UPDATE SET requested_ms = tenant_days.requested_ms + excluded.requested_ms
		RETURNING requested_ms`, tenant, utcDay(q.Day), ask).Scan(&total); err != nil {
		return fmt.Errorf("requested seconds of %s: %w", tenant, err)
	}
	before := total - ask
	if limit > 0 && (total > limit*1000 || (ask == 0 && before >= limit*1000)) {
		return &QuotaError{Tenant: tenant, Quota: QuotaDailySeconds, Use: float64(before) / 1000, Ask: float64(ask) / 1000, Limit: limit,
			Day: utcDay(q.Day)}
	}
	return nil
}
