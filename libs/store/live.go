package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartLiveClock returns a live job's LiveStartAt, starting its clock now
// if it has not started (admission starts it when it first releases
// segment 0; a job admitted before the clock existed starts it here). It
// fails with ErrNotFound when the job is not a live job.
func (s *Store) StartLiveClock(ctx context.Context, job string) (time.Time, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `UPDATE jobs SET live_start_at = coalesce(live_start_at, now())
		WHERE id = $1 AND live RETURNING live_start_at`, job).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("store: live job %s: %w", job, ErrNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: live clock of %s: %w", job, err)
	}
	return at, nil
}
