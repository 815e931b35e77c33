package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AdmitReady moves ready segments of pool into its queue while the pool has
// fewer than window segments queued or running. It picks them fairly:
// higher priority first; within a priority, tenants take turns, the tenant
// with the fewest segments in flight going first, and a tenant's own jobs go
// oldest first. task builds each admitted segment's outbox row (attempt 1).
// Admission of one pool is serialised across dispatcher replicas by an
// advisory lock. Admitting segment 0 of a live job starts its live clock
// (Job.LiveStartAt). most > 0 caps the segments one call admits, so that a
// wide window is filled by several short transactions, the first of which
// can be published while the next runs; 0 admits all the window allows.
// running is the default most segments of one tenant being generated at
// once (RunningSegments: queued or running, in every pool), which a
// tenant's quota overrides (SetQuota), 0 meaning unlimited: a tenant at
// its limit has no segment admitted, and other tenants' take its turn. It
// returns how many segments it admitted.
func (s *Store) AdmitReady(ctx context.Context, pool string, window, most, running int, task func(Segment) (OutboxMsg, error)) (int, error) {
	admitted := 0
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('spool.admit.' || $1))`, pool); err != nil {
			return fmt.Errorf("admission lock: %w", err)
		}
		if err := lockTenantAdmission(ctx, tx, running); err != nil {
			return err
		}
		var inflight int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM segments WHERE pool = $1 AND state IN ('queued', 'running', 'tail_ready')`,
			pool).Scan(&inflight); err != nil {
			return fmt.Errorf("count in flight: %w", err)
		}
		free := window - inflight
		if most > 0 {
			free = min(free, most)
		}
		if free <= 0 {
			return nil
		}
		rows, err := tx.Query(ctx, `
WITH flight AS (
    SELECT j.tenant, count(*) AS n FROM segments s JOIN jobs j ON j.id = s.job_id
    WHERE s.pool = $1 AND s.state IN ('queued', 'running', 'tail_ready') GROUP BY j.tenant
), generating AS (
    -- RunningSegments: each tenant's segments queued or running, in every
    -- pool. A chain's hand-off swaps one for the next in one transaction.
    SELECT j.tenant, count(*) AS n FROM segments s JOIN jobs j ON j.id = s.job_id
    WHERE s.state IN ('queued', 'running') GROUP BY j.tenant
), ready AS (
    -- Each live job's first $2 ready segments are enough: no more than $2
    -- are admitted, and a job's later segments never come before them.
    SELECT c.job_id, c.idx, j.tenant, j.priority, j.created_at,
           row_number() OVER (PARTITION BY j.priority, j.tenant ORDER BY j.created_at, c.job_id, c.idx) AS turn
    FROM jobs j CROSS JOIN LATERAL (
        SELECT s.job_id, s.idx FROM segments s
        WHERE s.job_id = j.id AND s.state = 'ready' AND s.pool = $1
        ORDER BY s.idx LIMIT $2) c
    WHERE j.state IN ('queued', 'running')
)
SELECT r.job_id, r.idx FROM (SELECT *,
    -- the tenant's own order, over its priorities: its first segments stay within its running limit
    row_number() OVER (PARTITION BY tenant ORDER BY priority DESC, created_at, job_id, idx) AS own FROM ready) r
LEFT JOIN flight f ON f.tenant = r.tenant
LEFT JOIN generating g ON g.tenant = r.tenant
LEFT JOIN quotas q ON q.tenant = r.tenant
WHERE coalesce(q.running_segments, $3) = 0 OR coalesce(g.n, 0) + r.own <= coalesce(q.running_segments, $3)
ORDER BY r.priority DESC, coalesce(f.n, 0) + r.turn, r.created_at, r.job_id, r.idx
LIMIT $2`, pool, free, running)
		if err != nil {
			return fmt.Errorf("pick ready segments: %w", err)
		}
		type key struct {
			job string
			idx int
		}
		keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (key, error) {
			var k key
			return k, r.Scan(&k.job, &k.idx)
		})
		if err != nil {
			return fmt.Errorf("pick ready segments: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		jobs, idxs := make([]string, len(keys)), make([]int32, len(keys))
		for i, k := range keys {
			jobs[i], idxs[i] = k.job, int32(k.idx)
		}
		rows, err = tx.Query(ctx, `UPDATE segments s SET state = 'queued', attempts = 1, queued_at = now(), updated_at = now()
			FROM unnest($1::text[], $2::int[]) AS k(kjob, kidx)
			WHERE s.job_id = k.kjob AND s.idx = k.kidx AND s.state = 'ready'
			RETURNING `+segmentColumns, jobs, idxs)
		if err != nil {
			return fmt.Errorf("admit: %w", err)
		}
		segs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Segment, error) { return scanSegment(r) })
		if err != nil {
			return fmt.Errorf("admit: %w", err)
		}
		var firsts []string
		for _, sg := range segs {
			if sg.Index == 0 {
				firsts = append(firsts, sg.JobID)
			}
		}
		if len(firsts) > 0 { // a live job's clock starts when its segment 0 is first released
			if _, err := tx.Exec(ctx, `UPDATE jobs SET live_start_at = now() WHERE id = ANY($1) AND live AND live_start_at IS NULL`,
				firsts); err != nil {
				return fmt.Errorf("admit: start live clocks: %w", err)
			}
		}
		atts, msgs := make([]attemptRow, len(segs)), make([]OutboxMsg, len(segs))
		for i, sg := range segs {
			msg, err := task(sg)
			if err != nil {
				return err
			}
			atts[i], msgs[i] = attemptRow{job: sg.JobID, idx: sg.Index, attempt: 1, outcome: OutcomeQueued}, msg
		}
		if err := upsertAttempts(ctx, tx, atts); err != nil {
			return fmt.Errorf("admit: %w", err)
		}
		if err := insertOutboxBatch(ctx, tx, msgs); err != nil {
			return fmt.Errorf("admit: %w", err)
		}
		admitted = len(segs)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return admitted, nil
}

// lockTenantAdmission serialises admission across pools while a running
// limit may apply (running > 0, or a tenant's quota sets one): a tenant's
// segments in two pools are then never admitted by two transactions that
// each see the other's slots free. Taken after the pool's lock, always in
// that order.
func lockTenantAdmission(ctx context.Context, tx pgx.Tx, running int) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('spool.admit.tenants'))
		WHERE $1 > 0 OR EXISTS (SELECT 1 FROM quotas WHERE running_segments > 0)`, running); err != nil {
		return fmt.Errorf("tenant admission lock: %w", err)
	}
	return nil
}
