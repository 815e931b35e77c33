package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewJob is everything written when a job is accepted.
type NewJob struct {
	Job      Job
	Segments []Segment
	Outbox   []OutboxMsg
	// Inputs are the uploads the job is made from (job_inputs).
	Inputs []JobInput
}

// JobInput is an upload a job is made from, in its role: "image", "video",
// "audio" or "reference" (the spec's field).
type JobInput struct {
	Role     string
	UploadID string
}

// nullable turns zero values into NULL.
func nullable[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

const insertJob = `
INSERT INTO jobs (id, tenant, priority, pool, model, mode, state, spec, live, total_frames, fps, width, height,
                  segments_total, error_code, error_field, error_message, trace_id, finished_at, traceparent,
                  live_ahead_s, longest_piece, input_frames, input_key, frames_done, audio_key, waveform_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
        CASE WHEN $7 = 'rejected' THEN now() END, $19, $20, $21, $22, $23, $22, $24, $25)
ON CONFLICT (id) DO NOTHING`

func (s *Store) insertJob(ctx context.Context, tx pgx.Tx, j Job) (bool, error) {
	spec := j.Spec
	if len(spec) == 0 {
		spec = []byte("{}")
	}
	tag, err := tx.Exec(ctx, insertJob, j.ID, j.Tenant, j.Priority, j.Pool, j.Model, j.Mode, j.State, spec, j.Live,
		nullable(j.TotalFrames), nullable(j.FPS), nullable(j.Width), nullable(j.Height), nullable(j.SegmentsTotal),
		nullable(j.ErrorCode), nullable(j.ErrorField), nullable(j.ErrorMessage), nullable(j.TraceID), nullable(j.Traceparent),
		nullable(j.LiveAheadS), nullable(j.LongestPiece), j.InputFrames, nullable(j.InputKey), nullable(j.AudioKey),
		nullable(j.WaveformKey))
	if err != nil {
		return false, fmt.Errorf("insert job %s: %w", j.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// CreateJob writes the job, its segments and its outbox rows in one
// transaction, and marks the gateway's submission of it (if any) admitted.
// A job id that exists already changes nothing but that mark and returns
// created = false: a submission delivered twice is accepted once.
func (s *Store) CreateJob(ctx context.Context, nj NewJob) (created bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := markAdmitted(ctx, tx, nj.Job.ID); err != nil {
			return err
		}
		if created, err = s.insertJob(ctx, tx, nj.Job); err != nil || !created {
			return err
		}
		rows := make([][]any, len(nj.Segments))
		for i, sg := range nj.Segments {
			state := sg.State
			if state == "" {
				state = SegPending
			}
			rows[i] = []any{nj.Job.ID, sg.Index, sg.FirstFrame, sg.Frames, sg.Overlap, sg.Trim, sg.Prompt, int64(sg.Seed),
				sg.Pool, state, nullable(sg.ConditioningKey), sg.Task, attemptsOf(state)}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"segments"},
			[]string{"job_id", "idx", "first_frame", "frames", "overlap", "trim_frames", "prompt", "seed", "pool", "state",
				"conditioning_key", "task", "attempts"},
			pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("insert segments of %s: %w", nj.Job.ID, err)
		}
		for _, in := range nj.Inputs {
			if _, err := tx.Exec(ctx, `INSERT INTO job_inputs (job_id, role, upload_id) VALUES ($1, $2, $3)`,
				nj.Job.ID, in.Role, in.UploadID); err != nil {
				return fmt.Errorf("insert input %s of %s: %w", in.Role, nj.Job.ID, err)
			}
			// Touching the upload locks its row: a janitor claiming it skips
			// it, and after the commit the job_inputs row keeps it. One the
			// janitor has claimed or deleted already is gone for this job.
			tag, err := tx.Exec(ctx, `UPDATE uploads SET last_used_at = now() WHERE id = $1 AND deleted_at IS NULL
				AND (purge_claimed_until IS NULL OR purge_claimed_until < now())`, in.UploadID)
			if err != nil {
				return fmt.Errorf("touch upload %s: %w", in.UploadID, err)
			}
			if tag.RowsAffected() == 0 {
				return &UploadGoneError{Role: in.Role, UploadID: in.UploadID}
			}
		}
		return insertOutbox(ctx, tx, nj.Outbox)
	})
	return created, err
}

// UploadGoneError is why CreateJob refused a job: one of its uploads was
// deleted (or is being deleted) by retention since the job was checked.
type UploadGoneError struct {
	Role, UploadID string
}

func (e *UploadGoneError) Error() string {
	return fmt.Sprintf("store: %s upload %s has expired and its files are deleted", e.Role, e.UploadID)
}

// JobInputs are the uploads job was made from, by role.
func (s *Store) JobInputs(ctx context.Context, job string) ([]JobInput, error) {
	rows, err := s.pool.Query(ctx, `SELECT role, upload_id FROM job_inputs WHERE job_id = $1 ORDER BY role`, job)
	if err != nil {
		return nil, fmt.Errorf("store: inputs of %s: %w", job, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (JobInput, error) {
		var in JobInput
		return in, r.Scan(&in.Role, &in.UploadID)
	})
	if err != nil {
		return nil, fmt.Errorf("store: inputs of %s: %w", job, err)
	}
	return out, nil
}

// attemptsOf is the attempt count a new segment starts with: a queued one
// is published as attempt 1 at once.
func attemptsOf(s SegmentState) int {
	if s == SegQueued {
		return 1
	}
	return 0
}

// RejectJob records a job whose spec was refused, in state rejected with
// its error, and its outbox rows (the rejection event), in one transaction
// that marks the gateway's submission of it (if any) admitted; a second
// call for the same id changes nothing.
func (s *Store) RejectJob(ctx context.Context, j Job, outbox ...OutboxMsg) (created bool, err error) {
	if j.ErrorCode == "" {
		return false, errors.New("store: reject job: an error code is required")
	}
	j.State = JobRejected
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := markAdmitted(ctx, tx, j.ID); err != nil {
			return err
		}
		if created, err = s.insertJob(ctx, tx, j); err != nil || !created {
			return err
		}
		return insertOutbox(ctx, tx, outbox)
	})
	return created, err
}

const jobColumns = `id, tenant, priority, pool, model, mode, state, spec, live, coalesce(total_frames, 0), coalesce(fps, 0),
	coalesce(width, 0), coalesce(height, 0), coalesce(segments_total, 0), segments_done, progress,
	coalesce(final_key, ''), coalesce(final_sha256, ''), coalesce(final_bytes, 0), coalesce(final_frames, 0),
	coalesce(error_code, ''), coalesce(error_field, ''), coalesce(error_message, ''), coalesce(trace_id, ''),
	created_at, updated_at, started_at, finished_at,
	coalesce(traceparent, ''), coalesce(live_ahead_s, 0), live_start_at, coalesce(longest_piece, 0), frames_done,
	input_frames, coalesce(input_key, ''), deleted_at, coalesce(audio_key, ''), coalesce(waveform_key, '')`

func scanJob(row pgx.Row) (Job, error) {
	var j Job
	err := row.Scan(&j.ID, &j.Tenant, &j.Priority, &j.Pool, &j.Model, &j.Mode, &j.State, &j.Spec, &j.Live, &j.TotalFrames,
		&j.FPS, &j.Width, &j.Height, &j.SegmentsTotal, &j.SegmentsDone, &j.Progress, &j.FinalKey, &j.FinalSHA256,
		&j.FinalBytes, &j.FinalFrames, &j.ErrorCode, &j.ErrorField, &j.ErrorMessage, &j.TraceID,
		&j.CreatedAt, &j.UpdatedAt, &j.StartedAt, &j.FinishedAt,
		&j.Traceparent, &j.LiveAheadS, &j.LiveStartAt, &j.LongestPiece, &j.FramesDone, &j.InputFrames, &j.InputKey,
		&j.DeletedAt, &j.AudioKey, &j.WaveformKey)
	return j, err
}

// GetJob returns a job; ErrNotFound when there is none.
func (s *Store) GetJob(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("store: job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("store: job %s: %w", id, err)
	}
	return j, nil
}

// ListJobsParams filter and page ListJobs.
type ListJobsParams struct {
	Tenant string   // "" for all
	State  JobState // "" for all
	Limit  int      // 1..1000; 0 means 50
	// After is the cursor of the previous page: list jobs older than it.
	After *Cursor
}

// Cursor is a position in the newest-first job list.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// ListJobs lists jobs newest first, one page at a time. The returned cursor
// is nil on the last page.
func (s *Store) ListJobs(ctx context.Context, p ListJobsParams) ([]Job, *Cursor, error) {
	if p.Limit == 0 {
		p.Limit = 50
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, nil, fmt.Errorf("store: list jobs: limit %d: want 1..1000", p.Limit)
	}
	var afterAt *time.Time
	afterID := ""
	if p.After != nil {
		afterAt, afterID = &p.After.CreatedAt, p.After.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE ($1 = '' OR tenant = $1) AND ($2 = '' OR state = $2)
		  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
		ORDER BY created_at DESC, id DESC LIMIT $5`, p.Tenant, string(p.State), afterAt, afterID, p.Limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("store: list jobs: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
	if err != nil {
		return nil, nil, fmt.Errorf("store: list jobs: %w", err)
	}
	var next *Cursor
	if len(jobs) > p.Limit {
		jobs = jobs[:p.Limit]
		last := jobs[len(jobs)-1]
		next = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return jobs, next, nil
}

// SetJobState moves a job to state to if it is in one of from; it reports
// whether it moved. Terminal states stamp finished_at; running stamps
// started_at once.
func (s *Store) SetJobState(ctx context.Context, id string, from []JobState, to JobState) (bool, error) {
	fromS := make([]string, len(from))
	for i, f := range from {
		fromS[i] = string(f)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE jobs SET state = $2, updated_at = now(),
		started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
		finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled', 'rejected') THEN now() ELSE finished_at END
		WHERE id = $1 AND state = ANY($3)`, id, string(to), fromS)
	if err != nil {
		return false, fmt.Errorf("store: job %s to %s: %w", id, to, err)
	}
	return tag.RowsAffected() == 1, nil
}
