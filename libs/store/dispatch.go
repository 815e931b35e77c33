package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// GetSegment returns one segment; ErrNotFound when there is none.
func (s *Store) GetSegment(ctx context.Context, jobID string, idx int) (Segment, error) {
	sg, err := scanSegment(s.pool.QueryRow(ctx, `SELECT `+segmentColumns+` FROM segments WHERE job_id = $1 AND idx = $2`, jobID, idx))
	if errors.Is(err, pgx.ErrNoRows) {
		return Segment{}, fmt.Errorf("store: segment %s/%d: %w", jobID, idx, ErrNotFound)
	}
	if err != nil {
		return Segment{}, fmt.Errorf("store: segment %s/%d: %w", jobID, idx, err)
	}
	return sg, nil
}

// Release makes a pending segment queued (its task is in Outbox).
type Release struct {
	JobID string
	Index int
	// Attempt is the attempt the task is of: one past the segment's
	// Attempts (1, unless a void stopped an earlier one). A segment whose
	// Attempts moved on meanwhile is not released.
	Attempt         int
	ConditioningKey string
	Outbox          []OutboxMsg
	// NotBefore is when its task goes out (a paced live segment; the
	// task's outbox row has the same); zero for now. The segment counts
	// as queued from then: the reconciler measures from it.
	NotBefore time.Time
}

// ReleaseSegment queues a pending segment of a live (queued or running)
// job as attempt r.Attempt and writes its outbox rows, in one transaction.
// It reports whether the segment was released: a second release, or one of
// a segment that is not pending, changes nothing.
func (s *Store) ReleaseSegment(ctx context.Context, r Release) (released bool, err error) {
	if r.Attempt < 1 {
		return false, fmt.Errorf("store: release %s/%d: attempt %d: want ≥ 1", r.JobID, r.Index, r.Attempt)
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE segments SET state = 'queued', conditioning_key = $3, attempts = $5,
			queued_at = coalesce($4::timestamptz, now()), updated_at = coalesce($4::timestamptz, now())
			WHERE job_id = $1 AND idx = $2 AND state = 'pending' AND attempts = $5 - 1
			  AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state IN ('queued', 'running'))`,
			r.JobID, r.Index, nullable(r.ConditioningKey), notBeforeOf(OutboxMsg{NotBefore: r.NotBefore}), r.Attempt)
		if err != nil {
			return fmt.Errorf("release %s/%d: %w", r.JobID, r.Index, err)
		}
		if released = tag.RowsAffected() == 1; !released {
			return nil
		}
		if err := upsertAttempt(ctx, tx, r.JobID, r.Index, r.Attempt, OutcomeQueued, Worker{}, Timings{}); err != nil {
			return err
		}
		return insertOutbox(ctx, tx, r.Outbox)
	})
	return released, err
}

// Retry replaces a failed (or lost) attempt with the next one.
type Retry struct {
	JobID      string
	Index      int
	Attempt    int     // the attempt that failed or was lost
	Outcome    Outcome // OutcomeFailed or OutcomeAbandoned
	ErrorClass string
	ErrorMsg   string
	Worker     Worker
	Outbox     []OutboxMsg // the next attempt's task, possibly delayed
	// Reopen also retries a done segment whose committed attempt is
	// Attempt: its output failed a later check (the stitcher's frame
	// count). The commit is undone and the job's progress with it.
	Reopen bool
	// Conditioning, when set, is the tail the next attempt is conditioned
	// on instead of the segment's current one (which could not be read).
	Conditioning string
}

// RetrySegment records the attempt's outcome and, if it is still the
// segment's latest attempt and the segment is not finished, queues attempt
// Attempt+1 with the outbox rows. It reports whether it queued a retry.
func (s *Store) RetrySegment(ctx context.Context, r Retry) (retried bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var state SegmentState
		var attempts int
		var committed *int
		err := tx.QueryRow(ctx, `SELECT state, attempts, committed_attempt FROM segments WHERE job_id = $1 AND idx = $2 FOR UPDATE`,
			r.JobID, r.Index).Scan(&state, &attempts, &committed)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("segment %s/%d: %w", r.JobID, r.Index, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("segment %s/%d: %w", r.JobID, r.Index, err)
		}
		if r.Reopen && state == SegDone && committed != nil && *committed == r.Attempt {
			_, err := tx.Exec(ctx, `UPDATE attempts SET outcome = 'failed', error_class = $4, error_message = $5
				WHERE job_id = $1 AND idx = $2 AND attempt = $3`, r.JobID, r.Index, r.Attempt, nullable(r.ErrorClass), nullable(r.ErrorMsg))
			if err != nil {
				return fmt.Errorf("reopen %s/%d: %w", r.JobID, r.Index, err)
			}
			if _, err := tx.Exec(ctx, `UPDATE segments SET state = 'running', committed_attempt = NULL, video_key = NULL,
				video_sha256 = NULL, video_bytes = NULL, video_frames = NULL WHERE job_id = $1 AND idx = $2`, r.JobID, r.Index); err != nil {
				return fmt.Errorf("reopen %s/%d: %w", r.JobID, r.Index, err)
			}
			if _, err := tx.Exec(ctx, `UPDATE jobs SET segments_done = greatest(segments_done - 1, 0), updated_at = now(),
				frames_done = greatest(frames_done - (SELECT frames - overlap - trim_frames FROM segments WHERE job_id = $1 AND idx = $2), 0)
				WHERE id = $1`, r.JobID, r.Index); err != nil {
				return fmt.Errorf("reopen %s/%d: %w", r.JobID, r.Index, err)
			}
			state, attempts = SegRunning, max(attempts, r.Attempt)
		}
		if err := finishAttempt(ctx, tx, r.JobID, r.Index, r.Attempt, r.Outcome, r.ErrorClass, r.ErrorMsg, r.Worker); err != nil {
			return err
		}
		if attempts != r.Attempt || (state != SegQueued && state != SegRunning && state != SegTailReady) {
			return nil // already retried, or finished
		}
		if _, err := tx.Exec(ctx, `UPDATE segments SET state = 'queued', attempts = $3, queued_at = now(), updated_at = now(),
			conditioning_key = coalesce($4, conditioning_key) WHERE job_id = $1 AND idx = $2`,
			r.JobID, r.Index, r.Attempt+1, nullable(r.Conditioning)); err != nil {
			return fmt.Errorf("retry %s/%d: %w", r.JobID, r.Index, err)
		}
		if err := upsertAttempt(ctx, tx, r.JobID, r.Index, r.Attempt+1, OutcomeQueued, Worker{}, Timings{}); err != nil {
			return err
		}
		retried = true
		return insertOutbox(ctx, tx, r.Outbox)
	})
	return retried, err
}

func finishAttempt(ctx context.Context, tx pgx.Tx, job string, idx, attempt int, o Outcome, class, msg string, w Worker) error {
	if err := upsertAttempt(ctx, tx, job, idx, attempt, o, w, Timings{}); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE attempts SET error_class = coalesce(error_class, $4), error_message = coalesce(error_message, $5),
		finished_at = coalesce(finished_at, now()) WHERE job_id = $1 AND idx = $2 AND attempt = $3`,
		job, idx, attempt, nullable(class), nullable(msg))
	if err != nil {
		return fmt.Errorf("attempt %s/%d/%d: %w", job, idx, attempt, err)
	}
	return nil
}

// Failure ends a job because one of its segments failed for good.
type Failure struct {
	JobID      string
	Index      int
	Attempt    int
	ErrorClass string
	ErrorCode  string // API error code of the job, e.g. "unavailable"
	ErrorMsg   string
	Worker     Worker
	Outbox     []OutboxMsg
}

// FailJob records the attempt as failed, the segment as failed, cancels the
// job's other unfinished segments and fails the job with the reason. It
// reports whether the job moved (a job already finished stays as it is).
// Segments are locked before the job, the order every transaction keeps.
func (s *Store) FailJob(ctx context.Context, f Failure) (failed bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := finishAttempt(ctx, tx, f.JobID, f.Index, f.Attempt, OutcomeFailed, f.ErrorClass, f.ErrorMsg, f.Worker); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE segments SET state = CASE WHEN idx = $2 THEN 'failed' ELSE 'cancelled' END,
			updated_at = now() WHERE job_id = $1 AND state NOT IN ('done', 'failed', 'cancelled')
			  AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state IN ('queued', 'running'))`, f.JobID, f.Index); err != nil {
			return fmt.Errorf("fail segments of %s: %w", f.JobID, err)
		}
		tag, err := tx.Exec(ctx, `UPDATE jobs SET state = 'failed', error_code = $2, error_message = $3,
			updated_at = now(), finished_at = now() WHERE id = $1 AND state IN ('queued', 'running')`,
			f.JobID, f.ErrorCode, f.ErrorMsg)
		if err != nil {
			return fmt.Errorf("fail job %s: %w", f.JobID, err)
		}
		if failed = tag.RowsAffected() == 1; !failed {
			return nil
		}
		return insertOutbox(ctx, tx, f.Outbox)
	})
	return failed, err
}

// CancelJob cancels a queued or running job and its unfinished segments,
// with its outbox rows; it reports whether the job moved. Segments are
// locked before the job, the order every transaction keeps.
func (s *Store) CancelJob(ctx context.Context, id, reason string, outbox ...OutboxMsg) (cancelled bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE segments SET state = 'cancelled', updated_at = now()
			WHERE job_id = $1 AND state NOT IN ('done', 'failed', 'cancelled')
			  AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state IN ('queued', 'running'))`, id); err != nil {
			return fmt.Errorf("cancel segments of %s: %w", id, err)
		}
		tag, err := tx.Exec(ctx, `UPDATE jobs SET state = 'cancelled', error_code = 'cancelled', error_message = $2,
			updated_at = now(), finished_at = now() WHERE id = $1 AND state IN ('queued', 'running')`, id, reason)
		if err != nil {
			return fmt.Errorf("cancel job %s: %w", id, err)
		}
		if cancelled = tag.RowsAffected() == 1; !cancelled {
			return nil
		}
		return insertOutbox(ctx, tx, outbox)
	})
	return cancelled, err
}

// StaleSegments lists segments of live jobs in pools that are queued or
// running but were not touched since before, oldest first.
func (s *Store) StaleSegments(ctx context.Context, pools []string, before time.Time, limit int) ([]Segment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+segmentColumns+` FROM segments s
		WHERE s.state IN ('queued', 'running', 'tail_ready') AND s.updated_at < $1 AND s.pool = ANY($3)
		  AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.state IN ('queued', 'running'))
		ORDER BY s.updated_at LIMIT $2`, before, limit, pools)
	if err != nil {
		return nil, fmt.Errorf("store: stale segments: %w", err)
	}
	segs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Segment, error) { return scanSegment(r) })
	if err != nil {
		return nil, fmt.Errorf("store: stale segments: %w", err)
	}
	return segs, nil
}

// TouchSegment marks a segment as seen alive now (a worker holds it).
func (s *Store) TouchSegment(ctx context.Context, jobID string, idx int) error {
	if _, err := s.pool.Exec(ctx, `UPDATE segments SET updated_at = now(), last_heartbeat_at = now()
		WHERE job_id = $1 AND idx = $2`, jobID, idx); err != nil {
		return fmt.Errorf("store: touch %s/%d: %w", jobID, idx, err)
	}
	return nil
}

// AppendSegments adds segments to a job (live jobs are planned a few
// segments ahead); segments that exist already are left as they are.
func (s *Store) AppendSegments(ctx context.Context, jobID string, segs []Segment) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		for _, sg := range segs {
			if _, err := tx.Exec(ctx, `INSERT INTO segments (job_id, idx, first_frame, frames, overlap, trim_frames, prompt, seed,
				pool, state, task) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10) ON CONFLICT (job_id, idx) DO NOTHING`,
				jobID, sg.Index, sg.FirstFrame, sg.Frames, sg.Overlap, sg.Trim, sg.Prompt, int64(sg.Seed), sg.Pool, sg.Task); err != nil {
				return fmt.Errorf("append segment %s/%d: %w", jobID, sg.Index, err)
			}
		}
		return nil
	})
}

// CountSegments counts the segments in a state, over all jobs.
func (s *Store) CountSegments(ctx context.Context, state SegmentState) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM segments WHERE state = $1`, state).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count segments: %w", err)
	}
	return n, nil
}

// FinishAttempt records how an attempt ended when nothing else changes:
// e.g. a segment stopped because its job was cancelled.
func (s *Store) FinishAttempt(ctx context.Context, jobID string, idx, attempt int, o Outcome, class, msg string, w Worker) error {
	return s.tx(ctx, func(tx pgx.Tx) error { return finishAttempt(ctx, tx, jobID, idx, attempt, o, class, msg, w) })
}

// ReturnedLate records that an attempt settled ABANDONED (its task was
// delivered again, its worker silent) had in fact been handed back by its
// worker, whose RETURNED result could not reach NATS in time (a failover,
// say): its class becomes class (ERROR_CLASS_RETURNED), so that it no
// longer counts against the segment's attempts, and msg says so. Any other
// attempt is left as it is; it reports whether it changed one.
func (s *Store) ReturnedLate(ctx context.Context, jobID string, idx, attempt int, class, msg string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE attempts SET error_class = $4, error_message = $5
		WHERE job_id = $1 AND idx = $2 AND attempt = $3 AND outcome = 'abandoned' AND error_class = 'ERROR_CLASS_ABANDONED'`,
		jobID, idx, attempt, class, msg)
	if err != nil {
		return false, fmt.Errorf("store: attempt %s/%d/%d: %w", jobID, idx, attempt, err)
	}
	return tag.RowsAffected() == 1, nil
}
