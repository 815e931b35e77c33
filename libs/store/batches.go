package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Batch is a row of batches: many job specs submitted in one request.
type Batch struct {
	ID        string
	Tenant    string
	Jobs      int // specs in the batch
	CreatedAt time.Time
	Items     []BatchItem // by index
}

// BatchItem is what became of one spec of a batch: a job, or an error.
type BatchItem struct {
	Index        int
	JobID        string // "" when the spec was refused
	ErrorCode    string
	ErrorField   string
	ErrorMessage string
	// Job is the item's job, from GetBatch; nil when the spec was refused
	// or the dispatcher has not recorded the job yet.
	Job *Job
}

// SaveBatch records a batch with the outcome of each of its specs, in one
// transaction, and returns it as stored. A batch that exists (a retried
// request) must have the same tenant and spec count, else ErrConflict; its
// items take the new outcomes, except those that name a job already: a
// spec submitted once stays what it became.
func (s *Store) SaveBatch(ctx context.Context, b Batch) (Batch, error) {
	if b.Jobs != len(b.Items) {
		return Batch{}, fmt.Errorf("store: batch %s: %d items for %d specs", b.ID, len(b.Items), b.Jobs)
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var tenant string
		var jobs int
		err := tx.QueryRow(ctx, `WITH i AS (INSERT INTO batches (id, tenant, jobs) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO NOTHING RETURNING tenant, jobs)
			SELECT tenant, jobs FROM i UNION ALL SELECT tenant, jobs FROM batches WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM i)`,
			b.ID, b.Tenant, b.Jobs).Scan(&tenant, &jobs)
		if err != nil {
			return fmt.Errorf("insert batch %s: %w", b.ID, err)
		}
		if tenant != b.Tenant || jobs != b.Jobs {
			return fmt.Errorf("batch %s exists with %d specs of tenant %s: %w", b.ID, jobs, tenant, ErrConflict)
		}
		idx, jobIDs, codes, fields, msgs := make([]int, len(b.Items)), make([]*string, len(b.Items)), make([]*string, len(b.Items)),
			make([]*string, len(b.Items)), make([]*string, len(b.Items))
		for i, it := range b.Items {
			idx[i], jobIDs[i], codes[i], fields[i], msgs[i] = it.Index, orNull(it.JobID), orNull(it.ErrorCode), orNull(it.ErrorField),
				orNull(it.ErrorMessage)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO batch_jobs (batch_id, idx, job_id, error_code, error_field, error_message)
			SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[])
			ON CONFLICT (batch_id, idx) DO UPDATE SET job_id = excluded.job_id, error_code = excluded.error_code,
				error_field = excluded.error_field, error_message = excluded.error_message
			WHERE batch_jobs.job_id IS NULL`, b.ID, idx, jobIDs, codes, fields, msgs); err != nil {
			return fmt.Errorf("insert items of batch %s: %w", b.ID, err)
		}
		return nil
	})
	if err != nil {
		return Batch{}, err
	}
	return s.batch(ctx, b.ID)
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// batch reads a batch and its items, without their jobs.
func (s *Store) batch(ctx context.Context, id string) (Batch, error) {
	b := Batch{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT tenant, jobs, created_at FROM batches WHERE id = $1`, id).Scan(&b.Tenant, &b.Jobs, &b.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Batch{}, fmt.Errorf("store: batch %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Batch{}, fmt.Errorf("store: batch %s: %w", id, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT idx, coalesce(job_id, ''), coalesce(error_code, ''), coalesce(error_field, ''),
		coalesce(error_message, '') FROM batch_jobs WHERE batch_id = $1 ORDER BY idx`, id)
	if err != nil {
		return Batch{}, fmt.Errorf("store: items of batch %s: %w", id, err)
	}
	b.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (BatchItem, error) {
		var it BatchItem
		err := r.Scan(&it.Index, &it.JobID, &it.ErrorCode, &it.ErrorField, &it.ErrorMessage)
		return it, err
	})
	if err != nil {
		return Batch{}, fmt.Errorf("store: items of batch %s: %w", id, err)
	}
	return b, nil
}

// GetBatch returns a batch with its items and each item's job as recorded
// now; ErrNotFound when there is none.
func (s *Store) GetBatch(ctx context.Context, id string) (Batch, error) {
	b, err := s.batch(ctx, id)
	if err != nil {
		return Batch{}, err
	}
	ids := make([]string, 0, len(b.Items))
	at := make(map[string][]int, len(b.Items)) // a job id may stand at more than one index
	for i, it := range b.Items {
		if it.JobID != "" {
			ids = append(ids, it.JobID)
			at[it.JobID] = append(at[it.JobID], i)
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ANY($1)`, ids)
	if err != nil {
		return Batch{}, fmt.Errorf("store: jobs of batch %s: %w", id, err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
	if err != nil {
		return Batch{}, fmt.Errorf("store: jobs of batch %s: %w", id, err)
	}
	for _, j := range jobs {
		for _, i := range at[j.ID] {
			b.Items[i].Job = &j
		}
	}
	return b, nil
}

// CountJobs is how many of the jobs ids the dispatcher has recorded.
func (s *Store) CountJobs(ctx context.Context, ids []string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE id = ANY($1)`, ids).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count jobs: %w", err)
	}
	return n, nil
}
