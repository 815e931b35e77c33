package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const insertArtifact = `INSERT INTO artifacts (key, job_id, kind, idx, attempt, sha256, bytes, frames)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING`

func artifactArgs(a Artifact) []any {
	var bytes, frames any
	if a.SHA256 != "" || a.Bytes != 0 {
		bytes = a.Bytes
	}
	if a.Frames != 0 {
		frames = a.Frames
	}
	return []any{a.Key, a.JobID, string(a.Kind), a.Index, nullable(a.Attempt), nullable(a.SHA256), bytes, frames}
}

// RecordArtifact records a stored object, e.g. an HLS fragment or the
// playlist. It reports whether the row is new: recording the same key again
// changes nothing. Segment and tail artifacts are recorded by the commits
// of their results (CommitDoneBatch, HandOff) and the final output by
// FinishJob.
func (s *Store) RecordArtifact(ctx context.Context, a Artifact) (created bool, err error) {
	tag, err := s.pool.Exec(ctx, insertArtifact, artifactArgs(a)...)
	if err != nil {
		return false, fmt.Errorf("store: artifact %s: %w", a.Key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ListArtifacts returns a job's artifacts by kind, then segment index
// (job-wide objects first), then key.
func (s *Store) ListArtifacts(ctx context.Context, jobID string) ([]Artifact, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, job_id, kind, idx, coalesce(attempt, 0), coalesce(sha256, ''),
		coalesce(bytes, 0), coalesce(frames, 0), created_at
		FROM artifacts WHERE job_id = $1 ORDER BY kind, idx NULLS FIRST, key`, jobID)
	if err != nil {
		return nil, fmt.Errorf("store: artifacts of %s: %w", jobID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Artifact, error) {
		var a Artifact
		err := r.Scan(&a.Key, &a.JobID, &a.Kind, &a.Index, &a.Attempt, &a.SHA256, &a.Bytes, &a.Frames, &a.CreatedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: artifacts of %s: %w", jobID, err)
	}
	return out, nil
}

// Final is a job's finished output, the whole video.
type Final struct {
	JobID  string
	Key    string // jobs/<job>/final.mp4
	SHA256 string // hex
	Bytes  int64
	Frames int64
	// Segments is how many segments the video holds. A live job's
	// segment counts become it: what was made, not what was planned.
	Segments int
	Outbox   []OutboxMsg // the succeeded event
}

// FinishJob records the job's final artifact and marks the job succeeded,
// with its outbox rows, in one transaction. A bounded job must have every
// segment committed; a live job may be running, or cancelled (a stopped
// live job is finalized with every frame made so far). It reports whether
// the job moved: the same Final again changes nothing and returns false.
// A live job's segments_total and segments_done become f.Segments.
// It fails with ErrNotFound when there is no such job, and with ErrConflict
// when the job cannot succeed (it failed, was rejected, still has segments
// to commit, or succeeded with another output).
func (s *Store) FinishJob(ctx context.Context, f Final) (finished bool, err error) {
	if f.Key == "" || f.SHA256 == "" {
		return false, errors.New("store: finish job: the final key and sha256 are required")
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		finished = false
		var state JobState
		var live bool
		var done, total int
		var key string
		err := tx.QueryRow(ctx, `SELECT state, live, segments_done, coalesce(segments_total, 0), coalesce(final_key, '')
			FROM jobs WHERE id = $1 FOR UPDATE`, f.JobID).Scan(&state, &live, &done, &total, &key)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("job %s: %w", f.JobID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("job %s: %w", f.JobID, err)
		}
		switch {
		case state == JobSucceeded && key == f.Key:
			return nil // delivered again
		case state == JobSucceeded:
			return fmt.Errorf("job %s succeeded with %s, not %s: %w", f.JobID, key, f.Key, ErrConflict)
		case state != JobQueued && state != JobRunning && !(live && state == JobCancelled):
			return fmt.Errorf("job %s is %s: %w", f.JobID, state, ErrConflict)
		case !live && done < total:
			return fmt.Errorf("job %s has %d of %d segments committed: %w", f.JobID, done, total, ErrConflict)
		}
		a := Artifact{Key: f.Key, JobID: f.JobID, Kind: KindFinal, SHA256: f.SHA256, Bytes: f.Bytes, Frames: f.Frames}
		b := &pgx.Batch{}
		b.Queue(insertArtifact, artifactArgs(a)...)
		b.Queue(`UPDATE jobs SET state = 'succeeded', final_key = $2, final_sha256 = $3, final_bytes = $4, final_frames = $5,
			progress = 1, error_code = NULL, error_field = NULL, error_message = NULL,
			segments_total = CASE WHEN live AND $6 > 0 THEN $6 ELSE segments_total END,
			segments_done = CASE WHEN live AND $6 > 0 THEN $6 ELSE segments_done END,
			started_at = coalesce(started_at, now()), finished_at = now(), updated_at = now()
			WHERE id = $1`, f.JobID, f.Key, f.SHA256, f.Bytes, f.Frames, f.Segments)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("finish job %s: %w", f.JobID, err)
		}
		finished = true
		return insertOutbox(ctx, tx, f.Outbox)
	})
	return finished, err
}
