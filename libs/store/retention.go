package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// TTLs is how long objects are kept after their last use, per tenant:
// Tenants overrides Default for the tenants it names. Zero keeps them for
// ever.
type TTLs struct {
	Default time.Duration
	Tenants map[string]time.Duration
}

// args are the TTLs as SQL parameters: the tenants, their TTLs and the
// default in milliseconds, and the shortest TTL that expires anything (0
// when none does), which bounds the scan.
func (t TTLs) args() (tenants []string, ms []int64, def, shortest int64) {
	def = t.Default.Milliseconds()
	shortest = def
	for _, tenant := range slices.Sorted(maps.Keys(t.Tenants)) {
		d := t.Tenants[tenant].Milliseconds()
		tenants, ms = append(tenants, tenant), append(ms, d)
		if d > 0 && (shortest == 0 || d < shortest) {
			shortest = d
		}
	}
	return tenants, ms, def, shortest
}

// Expired is a job or an upload whose objects a janitor has claimed for
// deletion.
type Expired struct {
	ID     string
	Tenant string
}

// jobFinished holds for a job j that nothing writes to any more: in a
// terminal state; with no stitch still open; not a stopped live job whose
// video the stitcher has yet to finalize (it is cancelled first and
// succeeds once finalized); and with no attempt a worker still holds (one
// running when its job was cancelled uploads until it sees the cancel).
// An attempt whose segment no heartbeat touched for inFlightQuiet is taken
// for dead: its worker went away.
const jobFinished = `(j.state IN ('succeeded', 'failed', 'cancelled', 'rejected')
	AND NOT EXISTS (SELECT 1 FROM stitches st WHERE st.job_id = j.id AND st.finalized_at IS NULL AND st.closed_at IS NULL)
	AND NOT (j.live AND j.state = 'cancelled' AND j.segments_done > 0
	         AND NOT EXISTS (SELECT 1 FROM stitches st WHERE st.job_id = j.id))
	AND NOT EXISTS (SELECT 1 FROM attempts a JOIN segments sg ON sg.job_id = a.job_id AND sg.idx = a.idx
	                WHERE a.job_id = j.id AND a.outcome IN ('running', 'tail_ready')
	                  AND sg.updated_at > now() - interval '` + inFlightQuiet + `'))`

// inFlightQuiet is how long an attempt of a finished job may go without a
// heartbeat before it is taken for dead.
const inFlightQuiet = "2 minutes"

// JobFinished reports whether nothing writes to the job's objects any more:
// it is in a terminal state, the stitcher is done with it (a cancelled or
// failed job's stitch is closed, a stopped live job's finalized) and no
// worker still holds one of its segments.
// ErrNotFound when there is no such job.
func (s *Store) JobFinished(ctx context.Context, id string) (bool, error) {
	var done bool
	err := s.pool.QueryRow(ctx, `SELECT `+jobFinished+` FROM jobs j WHERE j.id = $1`, id).Scan(&done)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("store: job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("store: job %s: %w", id, err)
	}
	return done, nil
}

// ttlOf is the TTL in milliseconds of the tenant in column col, from the
// unnested tenants ($2) and TTLs ($3), or the default ($4).
func ttlOf(col string) string {
	return `coalesce((SELECT t.ms FROM unnest($2::text[], $3::bigint[]) AS t(tenant, ms) WHERE t.tenant = ` + col + `), $4)`
}

// ClaimExpiredJobs claims for owner, for lease, up to limit finished jobs
// whose objects have outlived their tenant's TTL since the job finished,
// oldest first. A job another janitor holds is skipped; one whose claim
// lapsed (its janitor died) is claimed again. The caller deletes the
// objects, then calls MarkJobDeleted.
func (s *Store) ClaimExpiredJobs(ctx context.Context, owner string, ttl TTLs, lease time.Duration, limit int) ([]Expired, error) {
	tenants, ms, def, shortest := ttl.args()
	if shortest == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
WITH c AS (
    SELECT j.id FROM jobs j
    WHERE j.deleted_at IS NULL AND j.finished_at IS NOT NULL
      AND j.finished_at < now() - $5 * interval '1 millisecond'
      AND (j.purge_claimed_until IS NULL OR j.purge_claimed_until < now())
      AND `+ttlOf("j.tenant")+` > 0
      AND j.finished_at < now() - `+ttlOf("j.tenant")+` * interval '1 millisecond'
      AND `+jobFinished+`
    ORDER BY j.finished_at
    LIMIT $6
    FOR UPDATE OF j SKIP LOCKED)
UPDATE jobs SET purge_claimed_until = now() + $7 * interval '1 millisecond', purge_owner = $1
FROM c WHERE jobs.id = c.id
RETURNING jobs.id, jobs.tenant`, owner, tenants, ms, def, shortest, limit, lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("store: claim expired jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Expired])
	if err != nil {
		return nil, fmt.Errorf("store: claim expired jobs: %w", err)
	}
	return out, nil
}

// MarkJobDeleted records that the objects of a finished job are gone and
// returns when that was first recorded: a second call changes nothing. Its
// artifacts are marked too; the job keeps its state, segments, attempts and
// artifacts as its lineage. A job that is not finished is ErrConflict.
func (s *Store) MarkJobDeleted(ctx context.Context, id string) (time.Time, error) {
	var at time.Time
	err := s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE jobs j SET deleted_at = coalesce(deleted_at, now()), purge_claimed_until = NULL,
			purge_owner = NULL, updated_at = now()
			WHERE j.id = $1 AND `+jobFinished+` RETURNING deleted_at`, id).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			var state JobState
			if err := tx.QueryRow(ctx, `SELECT state FROM jobs WHERE id = $1`, id).Scan(&state); errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("job %s: %w", id, ErrNotFound)
			}
			return fmt.Errorf("job %s is %s, or its video is still being closed: %w", id, state, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("mark job %s deleted: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE artifacts SET deleted_at = coalesce(deleted_at, $2) WHERE job_id = $1`, id, at); err != nil {
			return fmt.Errorf("mark artifacts of %s deleted: %w", id, err)
		}
		return nil
	})
	return at, err
}

// ClaimExpiredUploads claims for owner, for lease, up to limit uploads
// whose objects may go, least recently used first: those unused for longer
// than their tenant's TTL, and pending ones past their expires_at; in both
// cases only when no job that is not finished (and not deleted) refers to
// them. The caller deletes the objects, then calls MarkUploadDeleted.
func (s *Store) ClaimExpiredUploads(ctx context.Context, owner string, ttl TTLs, lease time.Duration, limit int) ([]Expired, error) {
	tenants, ms, def, _ := ttl.args()
	rows, err := s.pool.Query(ctx, `
WITH c AS (
    SELECT u.id FROM uploads u
    WHERE u.deleted_at IS NULL
      AND (u.purge_claimed_until IS NULL OR u.purge_claimed_until < now())
      AND ((u.state = 'pending' AND u.expires_at < now())
        OR (`+ttlOf("u.tenant")+` > 0 AND u.last_used_at < now() - `+ttlOf("u.tenant")+` * interval '1 millisecond'))
      AND NOT EXISTS (SELECT 1 FROM job_inputs ji JOIN jobs j ON j.id = ji.job_id
                      WHERE ji.upload_id = u.id AND j.deleted_at IS NULL AND NOT (`+jobFinished+`))
    ORDER BY u.last_used_at
    LIMIT $5
    FOR UPDATE OF u SKIP LOCKED)
UPDATE uploads SET purge_claimed_until = now() + $6 * interval '1 millisecond', purge_owner = $1
FROM c WHERE uploads.id = c.id
RETURNING uploads.id, uploads.tenant`, owner, tenants, ms, def, limit, lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("store: claim expired uploads: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Expired])
	if err != nil {
		return nil, fmt.Errorf("store: claim expired uploads: %w", err)
	}
	return out, nil
}

// MarkUploadDeleted records that an upload's objects are gone; a second
// call changes nothing. The row stays, for the lineage of the jobs made
// from it.
func (s *Store) MarkUploadDeleted(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE uploads SET deleted_at = coalesce(deleted_at, now()), purge_claimed_until = NULL,
		purge_owner = NULL WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: mark upload %s deleted: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: upload %s: %w", id, ErrNotFound)
	}
	return nil
}
