package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Submission is a job spec the gateway accepted: recorded before its 202,
// so that the job exists in Postgres whatever JetStream loses afterwards.
// A dispatcher admits it once (CreateJob or RejectJob marks it admitted in
// the job's transaction), whichever way it arrives: from
// spool.jobs.submit, or re-driven from here (ClaimSubmissions).
type Submission struct {
	JobID  string
	Tenant string
	// Spec is the JobSpec as protobuf, with its id set to JobID.
	Spec []byte
	// Traceparent is the W3C trace context of the job.submit span; "" when
	// none.
	Traceparent string
	AcceptedAt  time.Time
	// AdmittedAt is when a dispatcher recorded the job; nil until then.
	AdmittedAt *time.Time
}

// SubmissionClaim is what ClaimSubmission found.
type SubmissionClaim int

// The answers of ClaimSubmission.
const (
	// ClaimNone: no submission has the id (it came straight to NATS).
	ClaimNone SubmissionClaim = iota
	// ClaimTaken: the submission is the caller's to admit, for the lease.
	ClaimTaken
	// ClaimBusy: another dispatcher holds it; ask again later.
	ClaimBusy
	// ClaimAdmitted: its job is recorded already.
	ClaimAdmitted
)

const submissionColumns = `job_id, tenant, spec, coalesce(traceparent, ''), accepted_at, admitted_at`

func scanSubmission(row pgx.Row) (Submission, error) {
	var s Submission
	err := row.Scan(&s.JobID, &s.Tenant, &s.Spec, &s.Traceparent, &s.AcceptedAt, &s.AdmittedAt)
	return s, err
}

// RecordSubmission records sub (its AcceptedAt and AdmittedAt are set
// here) unless a submission of its job id exists. It returns the recorded
// submission and whether it is sub: false means the id was taken before,
// and the returned one is that earlier submission, for the caller to
// compare (a retry carries the same spec).
func (s *Store) RecordSubmission(ctx context.Context, sub Submission) (Submission, bool, error) {
	got, err := scanSubmission(s.pool.QueryRow(ctx, `INSERT INTO submissions (job_id, tenant, spec, traceparent)
		VALUES ($1, $2, $3, $4) ON CONFLICT (job_id) DO NOTHING RETURNING `+submissionColumns,
		sub.JobID, sub.Tenant, sub.Spec, nullable(sub.Traceparent)))
	if err == nil {
		return got, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Submission{}, false, fmt.Errorf("store: record submission %s: %w", sub.JobID, err)
	}
	got, err = s.GetSubmission(ctx, sub.JobID)
	return got, false, err
}

// GetSubmission returns the submission of job id; ErrNotFound when the
// gateway recorded none (the job was submitted straight to NATS, or never).
func (s *Store) GetSubmission(ctx context.Context, id string) (Submission, error) {
	got, err := scanSubmission(s.pool.QueryRow(ctx, `SELECT `+submissionColumns+` FROM submissions WHERE job_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Submission{}, fmt.Errorf("store: submission %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Submission{}, fmt.Errorf("store: submission %s: %w", id, err)
	}
	return got, nil
}

// ClaimSubmission claims the submission of job id for owner, for lease,
// when it is not admitted and no claim on it runs, not even owner's own
// (a batch that ClaimSubmissions handed the same dispatcher may hold it).
// It says what it found: no submission, claimed, busy (a claim runs) or
// admitted.
func (s *Store) ClaimSubmission(ctx context.Context, id, owner string, lease time.Duration) (SubmissionClaim, error) {
	claim := ClaimNone
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var admitted, busy bool
		err := tx.QueryRow(ctx, `SELECT admitted_at IS NOT NULL, coalesce(claimed_until > now(), false)
			FROM submissions WHERE job_id = $1 FOR UPDATE`, id).Scan(&admitted, &busy)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			claim = ClaimNone
			return nil
		case err != nil:
			return fmt.Errorf("claim submission %s: %w", id, err)
		case admitted:
			claim = ClaimAdmitted
			return nil
		case busy:
			claim = ClaimBusy
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE submissions SET claimed_until = now() + $3 * interval '1 millisecond', claimed_by = $2
			WHERE job_id = $1`, id, owner, lease.Milliseconds()); err != nil {
			return fmt.Errorf("claim submission %s: %w", id, err)
		}
		claim = ClaimTaken
		return nil
	})
	return claim, err
}

// ClaimSubmissions claims for owner, for lease, up to limit submissions
// that no dispatcher has admitted although they were accepted more than
// after ago, oldest first: those whose message JetStream lost, or that
// arrived while no dispatcher ran. One another owner holds is skipped
// (FOR UPDATE SKIP LOCKED, then its lease); one whose claim lapsed is
// claimed again. The caller admits each (CreateJob or RejectJob marks it
// admitted), or gives it back with ReleaseSubmission.
func (s *Store) ClaimSubmissions(ctx context.Context, owner string, after, lease time.Duration, limit int) ([]Submission, error) {
	rows, err := s.pool.Query(ctx, `
WITH c AS (
    SELECT job_id FROM submissions
    WHERE admitted_at IS NULL AND accepted_at < now() - $2 * interval '1 millisecond'
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY accepted_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
UPDATE submissions s SET claimed_until = now() + $4 * interval '1 millisecond', claimed_by = $1
FROM c WHERE s.job_id = c.job_id
RETURNING s.job_id, s.tenant, s.spec, coalesce(s.traceparent, ''), s.accepted_at, s.admitted_at`,
		owner, after.Milliseconds(), limit, lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("store: claim submissions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Submission, error) { return scanSubmission(r) })
	if err != nil {
		return nil, fmt.Errorf("store: claim submissions: %w", err)
	}
	slices.SortFunc(out, func(a, b Submission) int { return a.AcceptedAt.Compare(b.AcceptedAt) })
	return out, nil
}

// RenewSubmission extends owner's claim on the submission of job id to
// lease from now, while its admission goes on (a long intake). It is a
// no-op once the submission is admitted or another owner holds it.
func (s *Store) RenewSubmission(ctx context.Context, id, owner string, lease time.Duration) error {
	if _, err := s.pool.Exec(ctx, `UPDATE submissions SET claimed_until = now() + $3 * interval '1 millisecond'
		WHERE job_id = $1 AND claimed_by = $2 AND admitted_at IS NULL`, id, owner, lease.Milliseconds()); err != nil {
		return fmt.Errorf("store: renew submission %s: %w", id, err)
	}
	return nil
}

// ReleaseSubmission gives up owner's claim on the submission of job id,
// whose admission failed for a reason that may pass (the object store is
// down): any dispatcher may claim it again at once.
func (s *Store) ReleaseSubmission(ctx context.Context, id, owner string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE submissions SET claimed_until = NULL, claimed_by = NULL
		WHERE job_id = $1 AND claimed_by = $2 AND admitted_at IS NULL`, id, owner); err != nil {
		return fmt.Errorf("store: release submission %s: %w", id, err)
	}
	return nil
}

// CountWaitingSubmissions counts the submissions no dispatcher has
// admitted yet.
func (s *Store) CountWaitingSubmissions(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM submissions WHERE admitted_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count submissions: %w", err)
	}
	return n, nil
}

// markAdmitted marks the submission of job id admitted, in the
// transaction that records the job; a job without one changes nothing.
func markAdmitted(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `UPDATE submissions SET admitted_at = now(), claimed_until = NULL
		WHERE job_id = $1 AND admitted_at IS NULL`, id); err != nil {
		return fmt.Errorf("mark submission %s admitted: %w", id, err)
	}
	return nil
}
