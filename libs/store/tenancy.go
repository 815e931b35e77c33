package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// UploadTenant is the tenant of upload id, for a caller that may see every
// tenant's (an admin); ErrNotFound when there is no such upload.
func (s *Store) UploadTenant(ctx context.Context, id string) (string, error) {
	var tenant string
	err := s.pool.QueryRow(ctx, `SELECT tenant FROM uploads WHERE id = $1`, id).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("store: upload %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: upload %s: %w", id, err)
	}
	return tenant, nil
}

// JobTenant is the tenant of job id, recorded or a submission not
// recorded yet; ErrNotFound when there is neither.
func (s *Store) JobTenant(ctx context.Context, id string) (string, error) {
	var tenant string
	err := s.pool.QueryRow(ctx, `SELECT tenant FROM jobs WHERE id = $1
		UNION ALL SELECT tenant FROM submissions WHERE job_id = $1 LIMIT 1`, id).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("store: job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: job %s: %w", id, err)
	}
	return tenant, nil
}

// TenantJobs returns those of the job ids that are tenant's: recorded jobs
// and submissions not recorded yet.
func (s *Store) TenantJobs(ctx context.Context, tenant string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM jobs WHERE id = ANY($1) AND tenant = $2
		UNION SELECT job_id FROM submissions WHERE job_id = ANY($1) AND tenant = $2`, ids, tenant)
	if err != nil {
		return nil, fmt.Errorf("store: jobs of tenant %s: %w", tenant, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: jobs of tenant %s: %w", tenant, err)
	}
	return out, nil
}

// TenantHasJob is nil when job id, recorded or a submission not recorded
// yet, is tenant's ("" for any tenant's). One that does not exist and one
// that is another tenant's are the same ErrNotFound, in the words GetJob
// uses for a missing job, so that a caller cannot tell them apart.
func (s *Store) TenantHasJob(ctx context.Context, tenant, id string) error {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM jobs WHERE id = $1 AND ($2 = '' OR tenant = $2))
		+ (SELECT count(*) FROM submissions WHERE job_id = $1 AND ($2 = '' OR tenant = $2))`, id, tenant).Scan(&n)
	switch {
	case err != nil:
		return fmt.Errorf("store: job %s: %w", id, err)
	case n == 0:
		return fmt.Errorf("store: job %s: %w", id, ErrNotFound)
	}
	return nil
}
