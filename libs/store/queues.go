package store

import (
	"context"
	"fmt"
	"time"
)

// PoolQueue is how a pool's work stands in Postgres: segments ready but not
// admitted (behind the pool window), queued on NATS, and running; and how
// long the oldest queued segment has waited.
type PoolQueue struct {
	Pool                    string
	Ready, Queued, Running  int
	OldestQueued            time.Duration
	ActiveJobs, WaitingJobs int // jobs running, and jobs queued that have not started
}

// PoolQueues reads the work of every pool that has any. It reads only the
// segments that are ready or in flight (through their partial indexes) and
// the jobs not yet finished, so it stays cheap however long the history.
func (s *Store) PoolQueues(ctx context.Context) ([]PoolQueue, error) {
	rows, err := s.pool.Query(ctx, `
		WITH seg AS (
			SELECT pool,
			       count(*) FILTER (WHERE state = 'ready') AS ready,
			       count(*) FILTER (WHERE state = 'queued') AS queued,
			       count(*) FILTER (WHERE state IN ('running', 'tail_ready')) AS running,
			       coalesce(extract(epoch FROM now() - min(queued_at) FILTER (WHERE state = 'queued')), 0) AS oldest
			FROM segments WHERE state IN ('ready', 'queued', 'running', 'tail_ready')
			GROUP BY pool),
		job AS (
			SELECT pool,
			       count(*) FILTER (WHERE state = 'running') AS active,
			       count(*) FILTER (WHERE state = 'queued') AS waiting
			FROM jobs WHERE state IN ('queued', 'running')
			GROUP BY pool)
		SELECT coalesce(seg.pool, job.pool), coalesce(ready, 0), coalesce(queued, 0), coalesce(running, 0),
		       coalesce(oldest, 0)::float8, coalesce(active, 0), coalesce(waiting, 0)
		FROM seg FULL JOIN job ON seg.pool = job.pool
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("store: pool queues: %w", err)
	}
	defer rows.Close()
	var out []PoolQueue
	for rows.Next() {
		var q PoolQueue
		var oldest float64
		if err := rows.Scan(&q.Pool, &q.Ready, &q.Queued, &q.Running, &oldest, &q.ActiveJobs, &q.WaitingJobs); err != nil {
			return nil, fmt.Errorf("store: pool queues: %w", err)
		}
		q.OldestQueued = time.Duration(oldest * float64(time.Second))
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pool queues: %w", err)
	}
	return out, nil
}
