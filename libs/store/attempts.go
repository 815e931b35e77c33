package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AttemptStart says a worker took attempt Attempt of a segment.
type AttemptStart struct {
	JobID   string
	Index   int
	Attempt int
	Worker  Worker
}

// StartAttempt records that an attempt runs: the attempt row is created or
// filled in (a redelivery creates no second row), and a segment that is
// queued becomes running. It is idempotent.
func (s *Store) StartAttempt(ctx context.Context, a AttemptStart) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := upsertAttempt(ctx, tx, a.JobID, a.Index, a.Attempt, OutcomeRunning, a.Worker, Timings{}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE segments SET state = 'running', attempts = greatest(attempts, $3),
			last_heartbeat_at = now(), updated_at = now()
			WHERE job_id = $1 AND idx = $2 AND state = 'queued'`, a.JobID, a.Index, a.Attempt)
		if err != nil {
			return fmt.Errorf("segment %s/%d running: %w", a.JobID, a.Index, err)
		}
		return nil
	})
}

// upsertAttempt inserts the attempt or moves it forward: an outcome only
// advances (queued < running < tail_ready < done|failed), and worker fields
// fill in once.
func upsertAttempt(ctx context.Context, tx pgx.Tx, job string, idx, attempt int, o Outcome, w Worker, t Timings) error {
	if err := upsertAttempts(ctx, tx, []attemptRow{{job, idx, attempt, o, w, t}}); err != nil {
		return fmt.Errorf("attempt %s/%d/%d: %w", job, idx, attempt, err)
	}
	return nil
}

// TailReady reports that an attempt's tail state is uploaded.
type TailReady struct {
	JobID   string
	Index   int
	Attempt int
	TailKey string
	Worker  Worker
}

// RecordTailReady stores the tail key of the segment (the first attempt to
// report one wins) and moves it to tail_ready. It reports whether this call
// changed the segment, so that only the first report releases the next
// chain segment.
func (s *Store) RecordTailReady(ctx context.Context, r TailReady) (first bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := upsertAttempt(ctx, tx, r.JobID, r.Index, r.Attempt, OutcomeTailReady, r.Worker, Timings{}); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE segments SET state = 'tail_ready', tail_key = $3, attempts = greatest(attempts, $4),
			last_heartbeat_at = now(), updated_at = now()
			WHERE job_id = $1 AND idx = $2 AND tail_key IS NULL AND state IN ('queued', 'running')`,
			r.JobID, r.Index, r.TailKey, r.Attempt)
		if err != nil {
			return fmt.Errorf("segment %s/%d tail: %w", r.JobID, r.Index, err)
		}
		first = tag.RowsAffected() == 1
		if first {
			_, err = tx.Exec(ctx, `INSERT INTO artifacts (key, job_id, kind, idx, attempt) VALUES ($1, $2, 'tail', $3, $4)
				ON CONFLICT (key) DO NOTHING`, r.TailKey, r.JobID, r.Index, r.Attempt)
		}
		return err
	})
	return first, err
}

// SegmentDone reports that an attempt's video fragment is uploaded.
type SegmentDone struct {
	JobID    string
	Index    int
	Attempt  int
	VideoKey string
	SHA256   string
	Bytes    int64
	Frames   int
	Worker   Worker
	Timings  Timings
}

// Progress is a job's state and counters after a commit.
type Progress struct {
	State         JobState
	SegmentsDone  int
	SegmentsTotal int
	Progress      float64
}

// CommitSegmentDone commits the first DONE attempt of a segment: the
// segment becomes done with its video, the artifact is recorded, the job's
// progress moves and a queued job becomes running. Any later DONE, another
// attempt's or the same one again, changes nothing of the segment and
// returns committed = false; another attempt's is recorded as a duplicate.
// event, when not nil, builds an outbox row from the job's new progress,
// written in the same transaction. The writes go as one pipelined batch.
func (s *Store) CommitSegmentDone(ctx context.Context, d SegmentDone, event func(Progress) (OutboxMsg, error)) (committed bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		committed = false
		var state SegmentState
		var done *int
		err := tx.QueryRow(ctx, `SELECT state, committed_attempt FROM segments WHERE job_id = $1 AND idx = $2 FOR UPDATE`,
			d.JobID, d.Index).Scan(&state, &done)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("segment %s/%d: %w", d.JobID, d.Index, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("segment %s/%d: %w", d.JobID, d.Index, err)
		}
		if done != nil || state == SegCancelled || state == SegFailed {
			if done != nil && *done == d.Attempt {
				return nil // the committed DONE, delivered again
			}
			return upsertAttempt(ctx, tx, d.JobID, d.Index, d.Attempt, OutcomeDuplicate, d.Worker, d.Timings)
		}
		if err := upsertAttempt(ctx, tx, d.JobID, d.Index, d.Attempt, OutcomeDone, d.Worker, d.Timings); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE segments SET state = 'done', committed_attempt = $3, video_key = $4,
			video_sha256 = $5, video_bytes = $6, video_frames = $7, attempts = greatest(attempts, $3), updated_at = now()
			WHERE job_id = $1 AND idx = $2`, d.JobID, d.Index, d.Attempt, d.VideoKey, d.SHA256, d.Bytes, d.Frames)
		b.Queue(`INSERT INTO artifacts (key, job_id, kind, idx, attempt, sha256, bytes, frames)
			VALUES ($1, $2, 'segment', $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING`,
			d.VideoKey, d.JobID, d.Index, d.Attempt, d.SHA256, d.Bytes, d.Frames)
		b.Queue(`UPDATE jobs SET segments_done = segments_done + 1, updated_at = now(),
			state = CASE WHEN state = 'queued' THEN 'running' ELSE state END,
			started_at = coalesce(started_at, now()),
			progress = CASE WHEN segments_total > 0 THEN least(1, (segments_done + 1)::float8 / segments_total) ELSE progress END
			WHERE id = $1 RETURNING state, segments_done, coalesce(segments_total, 0), progress`, d.JobID)
		br := tx.SendBatch(ctx, b)
		for i := 0; i < 2; i++ {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("commit %s/%d/%d: %w", d.JobID, d.Index, d.Attempt, err)
			}
		}
		var p Progress
		if err := br.QueryRow().Scan(&p.State, &p.SegmentsDone, &p.SegmentsTotal, &p.Progress); err != nil {
			br.Close()
			return fmt.Errorf("job %s progress: %w", d.JobID, err)
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("commit %s/%d/%d: %w", d.JobID, d.Index, d.Attempt, err)
		}
		if event != nil {
			msg, err := event(p)
			if err != nil {
				return err
			}
			if err := insertOutbox(ctx, tx, []OutboxMsg{msg}); err != nil {
				return err
			}
		}
		committed = true
		return nil
	})
	return committed, err
}

// ListAttempts returns a segment's attempts in order.
func (s *Store) ListAttempts(ctx context.Context, jobID string, idx int) ([]Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT job_id, idx, attempt, outcome, coalesce(worker_id, ''), coalesce(node, ''),
		coalesce(gpu_uuid, ''), coalesce(gpu_name, ''), coalesce(backend, ''), coalesce(model, ''), coalesce(model_version, ''),
		coalesce(queue_ms, 0), coalesce(denoise_ms, 0), coalesce(decode_ms, 0), coalesce(encode_ms, 0), coalesce(upload_ms, 0),
		coalesce(error_class, ''), coalesce(error_message, ''), queued_at, started_at, finished_at
		FROM attempts WHERE job_id = $1 AND idx = $2 ORDER BY attempt`, jobID, idx)
	if err != nil {
		return nil, fmt.Errorf("store: attempts of %s/%d: %w", jobID, idx, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		w, t := &a.Worker, &a.Timings
		err := r.Scan(&a.JobID, &a.Index, &a.Attempt, &a.Outcome, &w.WorkerID, &w.Node, &w.GPUUUID, &w.GPUName, &w.Backend,
			&w.Model, &w.ModelVersion, &t.QueueMS, &t.DenoiseMS, &t.DecodeMS, &t.EncodeMS, &t.UploadMS,
			&a.ErrorClass, &a.ErrorMsg, &a.QueuedAt, &a.StartedAt, &a.FinishedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: attempts of %s/%d: %w", jobID, idx, err)
	}
	return out, nil
}
