package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Void reports that a chain segment's tail state, handed off by an
// attempt's TAIL_READY while it uploaded, will never be in the object
// store: its upload failed for good.
type Void struct {
	JobID   string
	Index   int    // the segment whose tail is void
	Attempt int    // the attempt that made it
	TailKey string // its object key
	// StoppedClass and Reason are recorded on the next segment's attempt
	// that was conditioned on the void tail (e.g. ERROR_CLASS_CONDITIONING,
	// an uncounted class).
	StoppedClass string
	Reason       string
	// TailOf is the object key of the segment's tail made by attempt.
	TailOf func(attempt int) (string, error)
	// Requeue builds the outbox row of the next segment's attempt,
	// conditioned on condKey. It is called only when the segment is done
	// already: its committed attempt's tail is then in the store (DONE
	// waits for it), and the next segment is queued on it at once.
	Requeue func(next Segment, attempt int, condKey string) (OutboxMsg, error)
}

// Voided is what a void changed.
type Voided struct {
	// Stopped is the next segment's attempt that was conditioned on the
	// void tail, now finished as abandoned; 0 when there was none.
	Stopped int
	// Requeued is the next segment's new attempt's outbox row when it was
	// queued at once on the committed tail; nil when the next segment went
	// back to pending, to be released by the segment's next TAIL_READY (or
	// DONE) as a new attempt, or when nothing was stopped.
	Requeued *OutboxMsg
}

// VoidTail voids a hand-off, in one transaction: the segment forgets the
// tail (its tail_key and tail artifact), and the next segment's attempt
// conditioned on it, if it has not finished, is finished as abandoned
// with v.StoppedClass; the next segment then goes back to pending, or is
// queued again at once when the segment is done. A void changes nothing
// for a job that has ended, for a tail its segment's committed attempt
// made (DONE waited for its upload: it did reach the store), or for a next
// segment no longer conditioned on it (a duplicate or late void). It
// returns ErrNotFound for an unknown segment.
func (s *Store) VoidTail(ctx context.Context, v Void) (Voided, error) {
	var out Voided
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = Voided{}
		var state SegmentState
		var committed int
		var live bool
		err := tx.QueryRow(ctx, `SELECT s.state, coalesce(s.committed_attempt, 0), j.state IN ('queued', 'running')
			FROM segments s JOIN jobs j ON j.id = s.job_id WHERE s.job_id = $1 AND s.idx = $2 FOR UPDATE OF s`,
			v.JobID, v.Index).Scan(&state, &committed, &live)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("segment %s/%d: %w", v.JobID, v.Index, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("void %s/%d: %w", v.JobID, v.Index, err)
		}
		if !live || (state == SegDone && committed == v.Attempt) {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE segments SET tail_key = NULL,
			state = CASE WHEN state = 'tail_ready' THEN 'running' ELSE state END, updated_at = now()
			WHERE job_id = $1 AND idx = $2 AND tail_key = $3`, v.JobID, v.Index, v.TailKey); err != nil {
			return fmt.Errorf("void %s/%d: %w", v.JobID, v.Index, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM artifacts WHERE key = $1 AND kind = 'tail' AND job_id = $2`, v.TailKey, v.JobID); err != nil {
			return fmt.Errorf("void %s: %w", v.TailKey, err)
		}
		next, err := scanSegment(tx.QueryRow(ctx, `SELECT `+segmentColumns+` FROM segments
			WHERE job_id = $1 AND idx = $2 + 1 AND conditioning_key = $3 AND state IN ('queued', 'running', 'tail_ready')
			FOR UPDATE`, v.JobID, v.Index, v.TailKey))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // the last segment, or not conditioned on it (any more)
		}
		if err != nil {
			return fmt.Errorf("void %s/%d: next segment: %w", v.JobID, v.Index, err)
		}
		if err := finishAttempt(ctx, tx, v.JobID, next.Index, next.Attempts, OutcomeAbandoned, v.StoppedClass, v.Reason, Worker{}); err != nil {
			return err
		}
		out.Stopped = next.Attempts
		if state != SegDone || committed == 0 {
			if _, err := tx.Exec(ctx, `UPDATE segments SET state = 'pending', conditioning_key = NULL, updated_at = now()
				WHERE job_id = $1 AND idx = $2`, v.JobID, next.Index); err != nil {
				return fmt.Errorf("void %s/%d: %w", v.JobID, next.Index, err)
			}
			return nil
		}
		cond, err := v.TailOf(committed)
		if err != nil {
			return err
		}
		attempt := next.Attempts + 1
		msg, err := v.Requeue(next, attempt, cond)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE segments SET state = 'queued', attempts = $3, conditioning_key = $4,
			queued_at = now(), updated_at = now() WHERE job_id = $1 AND idx = $2`, v.JobID, next.Index, attempt, cond); err != nil {
			return fmt.Errorf("void %s/%d: requeue: %w", v.JobID, next.Index, err)
		}
		if err := upsertAttempt(ctx, tx, v.JobID, next.Index, attempt, OutcomeQueued, Worker{}, Timings{}); err != nil {
			return err
		}
		out.Requeued = &msg
		return insertOutbox(ctx, tx, []OutboxMsg{msg})
	})
	return out, err
}
