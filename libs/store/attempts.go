package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

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

// attemptColumns are the columns scanAttempt reads, in its order.
const attemptColumns = `job_id, idx, attempt, outcome, coalesce(worker_id, ''), coalesce(node, ''),
	coalesce(gpu_uuid, ''), coalesce(gpu_name, ''), coalesce(backend, ''), coalesce(model, ''), coalesce(model_version, ''),
	coalesce(queue_ms, 0), coalesce(denoise_ms, 0), coalesce(decode_ms, 0), coalesce(encode_ms, 0), coalesce(upload_ms, 0),
	coalesce(error_class, ''), coalesce(error_message, ''), queued_at, started_at, finished_at`

func scanAttempt(r pgx.CollectableRow) (Attempt, error) {
	var a Attempt
	w, t := &a.Worker, &a.Timings
	err := r.Scan(&a.JobID, &a.Index, &a.Attempt, &a.Outcome, &w.WorkerID, &w.Node, &w.GPUUUID, &w.GPUName, &w.Backend,
		&w.Model, &w.ModelVersion, &t.QueueMS, &t.DenoiseMS, &t.DecodeMS, &t.EncodeMS, &t.UploadMS,
		&a.ErrorClass, &a.ErrorMsg, &a.QueuedAt, &a.StartedAt, &a.FinishedAt)
	return a, err
}

// ListAttempts returns a segment's attempts in order.
func (s *Store) ListAttempts(ctx context.Context, jobID string, idx int) ([]Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+attemptColumns+` FROM attempts WHERE job_id = $1 AND idx = $2 ORDER BY attempt`, jobID, idx)
	if err != nil {
		return nil, fmt.Errorf("store: attempts of %s/%d: %w", jobID, idx, err)
	}
	out, err := pgx.CollectRows(rows, scanAttempt)
	if err != nil {
		return nil, fmt.Errorf("store: attempts of %s/%d: %w", jobID, idx, err)
	}
	return out, nil
}

// ListJobAttempts returns every attempt of a job's segments, by segment
// and attempt: one query for what ListAttempts reads per segment.
func (s *Store) ListJobAttempts(ctx context.Context, jobID string) ([]Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+attemptColumns+` FROM attempts WHERE job_id = $1 ORDER BY idx, attempt`, jobID)
	if err != nil {
		return nil, fmt.Errorf("store: attempts of %s: %w", jobID, err)
	}
	out, err := pgx.CollectRows(rows, scanAttempt)
	if err != nil {
		return nil, fmt.Errorf("store: attempts of %s: %w", jobID, err)
	}
	return out, nil
}
