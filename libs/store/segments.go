package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const segmentColumns = `job_id, idx, first_frame, frames, overlap, trim_frames, prompt, seed, pool, state, attempts,
	coalesce(conditioning_key, ''), coalesce(committed_attempt, 0), coalesce(tail_key, ''), coalesce(video_key, ''),
	coalesce(video_sha256, ''), coalesce(video_bytes, 0), coalesce(video_frames, 0), updated_at, task`

func scanSegment(r pgx.Row) (Segment, error) {
	var sg Segment
	var seed int64
	err := r.Scan(&sg.JobID, &sg.Index, &sg.FirstFrame, &sg.Frames, &sg.Overlap, &sg.Trim, &sg.Prompt, &seed, &sg.Pool,
		&sg.State, &sg.Attempts, &sg.ConditioningKey, &sg.CommittedAttempt, &sg.TailKey, &sg.VideoKey, &sg.VideoSHA256,
		&sg.VideoBytes, &sg.VideoFrames, &sg.UpdatedAt, &sg.Task)
	sg.Seed = uint64(seed)
	return sg, err
}

// ListSegments returns a job's segments in index order.
func (s *Store) ListSegments(ctx context.Context, jobID string) ([]Segment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+segmentColumns+` FROM segments WHERE job_id = $1 ORDER BY idx`, jobID)
	if err != nil {
		return nil, fmt.Errorf("store: segments of %s: %w", jobID, err)
	}
	segs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Segment, error) { return scanSegment(r) })
	if err != nil {
		return nil, fmt.Errorf("store: segments of %s: %w", jobID, err)
	}
	return segs, nil
}
