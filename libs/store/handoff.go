package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// HandOff records a chain segment's TAIL_READY and, in the same
// transaction, releases the next segment if it is pending: next builds the
// released segment's outbox row (its task, conditioned on the tail) for
// its next attempt, next.Attempts (1, or one past an attempt stopped by a
// void: VoidTail). The
// tail's bookkeeping is sent as one pipelined batch, so the hand-off costs
// few round trips. It reports whether this was the first TAIL_READY of the
// segment and the released segment's row, nil when nothing was released.
// A row with a NotBefore (a paced live segment) goes out then, and the
// segment counts as queued from then (the reconciler measures from it).
func (s *Store) HandOff(ctx context.Context, r TailReady, next func(Segment) (OutboxMsg, error)) (first bool, released *OutboxMsg, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		queueTailReady(b, r)
		b.Queue(`UPDATE segments SET state = 'queued', conditioning_key = $3, attempts = attempts + 1, queued_at = now(), updated_at = now()
			WHERE job_id = $1 AND idx = $2 + 1 AND state = 'pending'
			  AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state IN ('queued', 'running'))
			RETURNING `+segmentColumns, r.JobID, r.Index, r.TailKey)
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("attempt %s/%d/%d: %w", r.JobID, r.Index, r.Attempt, err)
		}
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return fmt.Errorf("tail of %s/%d: %w", r.JobID, r.Index, err)
		}
		first = tag.RowsAffected() == 1
		sg, err := scanSegment(br.QueryRow())
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // the last segment, or released already
		}
		if err != nil {
			return fmt.Errorf("release %s/%d: %w", r.JobID, r.Index+1, err)
		}
		msg, err := next(sg)
		if err != nil {
			return err
		}
		b2 := &pgx.Batch{}
		b2.Queue(`INSERT INTO attempts (job_id, idx, attempt, outcome) VALUES ($1, $2, $3, 'queued') ON CONFLICT DO NOTHING`, r.JobID, r.Index+1, sg.Attempts)
		b2.Queue(`INSERT INTO outbox (msg_id, subject, payload, headers, not_before) VALUES ($1, $2, $3, $4, coalesce($5, now()))
			ON CONFLICT (msg_id) DO NOTHING`, msg.MsgID, msg.Subject, msg.Payload, headersOf(msg), notBeforeOf(msg))
		if !msg.NotBefore.IsZero() {
			b2.Queue(`UPDATE segments SET queued_at = $3, updated_at = $3 WHERE job_id = $1 AND idx = $2`, r.JobID, r.Index+1, msg.NotBefore)
		}
		if err := tx.SendBatch(ctx, b2).Close(); err != nil {
			return fmt.Errorf("queue %s/%d: %w", r.JobID, r.Index+1, err)
		}
		released = &msg
		return nil
	})
	return first, released, err
}

// HandOffPrepared is HandOff when the caller already holds the next
// segment's task (msg, built from its template as attempt 1): everything
// goes in one pipelined batch, which Postgres runs as one implicit
// transaction, so the hand-off costs a single round trip. It reports
// whether this was the first TAIL_READY of the segment and whether the next
// segment was released (the caller then publishes msg, or leaves it to the
// outbox when it has a NotBefore). A next segment pending after a void
// (its attempt 1 is spent) is not released: the caller releases it with
// HandOff or ReleaseSegment.
func (s *Store) HandOffPrepared(ctx context.Context, r TailReady, msg OutboxMsg) (first, released bool, err error) {
	b := &pgx.Batch{}
	queueTailReady(b, r)
	b.Queue(`UPDATE segments SET state = 'queued', conditioning_key = $3, attempts = 1,
		  queued_at = coalesce($4::timestamptz, now()), updated_at = coalesce($4::timestamptz, now())
		WHERE job_id = $1 AND idx = $2 + 1 AND state = 'pending' AND attempts = 0
		  AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state IN ('queued', 'running'))`, r.JobID, r.Index, r.TailKey, notBeforeOf(msg))
	// The next two see the release above: one implicit transaction.
	wasReleased := `EXISTS (SELECT 1 FROM segments WHERE job_id = $1 AND idx = $2 + 1 AND state = 'queued' AND conditioning_key = $3)`
	b.Queue(`INSERT INTO attempts (job_id, idx, attempt, outcome) SELECT $1, $2 + 1, 1, 'queued' WHERE `+wasReleased+`
		ON CONFLICT DO NOTHING`, r.JobID, r.Index, r.TailKey)
	b.Queue(`INSERT INTO outbox (msg_id, subject, payload, headers, not_before) SELECT $4, $5, $6, $7, coalesce($8::timestamptz, now())
		WHERE `+wasReleased+` ON CONFLICT (msg_id) DO NOTHING`, r.JobID, r.Index, r.TailKey, msg.MsgID, msg.Subject, msg.Payload,
		headersOf(msg), notBeforeOf(msg))
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return false, false, fmt.Errorf("store: attempt %s/%d/%d: %w", r.JobID, r.Index, r.Attempt, err)
	}
	tag, err := br.Exec()
	if err != nil {
		return false, false, fmt.Errorf("store: tail of %s/%d: %w", r.JobID, r.Index, err)
	}
	first = tag.RowsAffected() == 1
	if tag, err = br.Exec(); err != nil {
		return false, false, fmt.Errorf("store: release %s/%d: %w", r.JobID, r.Index+1, err)
	}
	releasedNext := tag.RowsAffected() == 1
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return false, false, fmt.Errorf("store: queue %s/%d: %w", r.JobID, r.Index+1, err)
		}
	}
	if err := br.Close(); err != nil {
		return false, false, fmt.Errorf("store: hand-off %s/%d: %w", r.JobID, r.Index, err)
	}
	return first, releasedNext, nil
}

// queueTailReady queues a TAIL_READY's bookkeeping: the attempt moves to
// tail_ready with its worker, and the first tail of the segment is recorded
// (the second statement's row count says whether this one was first).
func queueTailReady(b *pgx.Batch, r TailReady) {
	w := r.Worker
	b.Queue(`INSERT INTO attempts AS a (job_id, idx, attempt, outcome, worker_id, node, gpu_uuid, gpu_name, backend, model, model_version, started_at)
		VALUES ($1, $2, $3, 'tail_ready', $4, $5, $6, $7, $8, $9, $10, now())
		ON CONFLICT (job_id, idx, attempt) DO UPDATE SET
		  outcome = CASE WHEN a.outcome IN ('queued', 'running') THEN 'tail_ready' ELSE a.outcome END,
		  worker_id = coalesce(a.worker_id, EXCLUDED.worker_id), node = coalesce(a.node, EXCLUDED.node),
		  gpu_uuid = coalesce(a.gpu_uuid, EXCLUDED.gpu_uuid), gpu_name = coalesce(a.gpu_name, EXCLUDED.gpu_name),
		  backend = coalesce(a.backend, EXCLUDED.backend), model = coalesce(a.model, EXCLUDED.model),
		  model_version = coalesce(a.model_version, EXCLUDED.model_version), started_at = coalesce(a.started_at, now())`,
		r.JobID, r.Index, r.Attempt, nullable(w.WorkerID), nullable(w.Node), nullable(w.GPUUUID), nullable(w.GPUName),
		nullable(w.Backend), nullable(w.Model), nullable(w.ModelVersion))
	b.Queue(`WITH t AS (
		  UPDATE segments SET state = 'tail_ready', tail_key = $3, attempts = greatest(attempts, $4),
		    last_heartbeat_at = now(), updated_at = now()
		  WHERE job_id = $1 AND idx = $2 AND tail_key IS NULL AND state IN ('queued', 'running') RETURNING 1)
		INSERT INTO artifacts (key, job_id, kind, idx, attempt) SELECT $3, $1, 'tail', $2, $4 FROM t
		ON CONFLICT (key) DO NOTHING`, r.JobID, r.Index, r.TailKey, r.Attempt)
}
