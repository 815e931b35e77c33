package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Stitch is the stitcher's cursor of one job (see migration 00005).
type Stitch struct {
	JobID    string
	UploadID string // the final MP4's multipart upload
	Parts    []StitchPart
	// NextIndex, NextSeq, Frames, Bytes and SHAState describe what the
	// uploaded parts hold: the segments before NextIndex, the fragments
	// numbered before NextSeq, and the SHA-256 state after their bytes.
	NextIndex int
	NextSeq   int
	Frames    int64
	Bytes     int64
	SHAState  []byte
	// Appended is how many segments the HLS preview holds (pieces
	// 0..Appended−1); those from NextIndex on are not in a part yet.
	Appended  int
	Finalized bool
	// Closed marks a job that ended without a final video (cancelled or
	// failed): its playlist was closed and its upload aborted.
	Closed bool
	// Owner is the stitcher holding (or last holding) the job's lease.
	Owner string
}

// StitchPart is one uploaded part of the final MP4.
type StitchPart struct {
	Number int    `json:"n"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
}

// Piece is one segment's contribution to the video, also one HLS media
// segment.
type Piece struct {
	Index      int
	FirstFrame int64
	Frames     int
	Fragments  int
	Bytes      int64
	// CreatedAt is when the segment was first appended, by the database's
	// clock; set by the database (AddPiece ignores it).
	CreatedAt time.Time
}

// ErrLeased is returned when another stitcher holds the job's lease.
var ErrLeased = errors.New("the job is leased by another stitcher")

// OpenStitch returns the job's cursor, creating it with uploadID when the
// job has none (newUpload is called only then), and takes or renews the
// job's lease for owner. It fails with ErrLeased when another owner's lease
// is still running.
func (s *Store) OpenStitch(ctx context.Context, job, owner string, lease time.Duration, newUpload func() (string, error)) (Stitch, error) {
	st, err := s.claimStitch(ctx, job, owner, lease)
	if !errors.Is(err, ErrNotFound) {
		return st, err
	}
	id, err := newUpload()
	if err != nil {
		return Stitch{}, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO stitches (job_id, upload_id) VALUES ($1, $2) ON CONFLICT (job_id) DO NOTHING`,
		job, id); err != nil {
		return Stitch{}, fmt.Errorf("store: open stitch %s: %w", job, err)
	}
	return s.claimStitch(ctx, job, owner, lease)
}

func (s *Store) claimStitch(ctx context.Context, job, owner string, lease time.Duration) (Stitch, error) {
	var st Stitch
	var parts []byte
	var holder *string
	err := s.pool.QueryRow(ctx, `
WITH c AS (
    UPDATE stitches SET owner = $2, lease_until = now() + $3 * interval '1 millisecond'
    WHERE job_id = $1 AND (owner IS NULL OR owner = $2 OR lease_until < now())
    RETURNING job_id, upload_id, parts, next_idx, next_seq, frames, bytes, sha_state, appended, finalized_at IS NOT NULL,
        closed_at IS NOT NULL, owner)
SELECT * FROM c
UNION ALL
SELECT job_id, upload_id, parts, next_idx, next_seq, frames, bytes, sha_state, appended, finalized_at IS NOT NULL,
    closed_at IS NOT NULL, owner
FROM stitches WHERE job_id = $1 AND NOT EXISTS (SELECT 1 FROM c)`, job, owner, lease.Milliseconds()).Scan(
		&st.JobID, &st.UploadID, &parts, &st.NextIndex, &st.NextSeq, &st.Frames, &st.Bytes, &st.SHAState, &st.Appended,
		&st.Finalized, &st.Closed, &holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return Stitch{}, fmt.Errorf("store: stitch %s: %w", job, ErrNotFound)
	}
	if err != nil {
		return Stitch{}, fmt.Errorf("store: stitch %s: %w", job, err)
	}
	if holder == nil || *holder != owner {
		return Stitch{}, fmt.Errorf("store: stitch %s: %w", job, ErrLeased)
	}
	st.Owner = owner
	if err := json.Unmarshal(parts, &st.Parts); err != nil {
		return Stitch{}, fmt.Errorf("store: stitch %s: parts: %w", job, err)
	}
	return st, nil
}

// GetStitch reads a job's cursor without taking its lease.
func (s *Store) GetStitch(ctx context.Context, job string) (Stitch, error) {
	var st Stitch
	var parts []byte
	err := s.pool.QueryRow(ctx, `SELECT job_id, upload_id, parts, next_idx, next_seq, frames, bytes, sha_state, appended,
		finalized_at IS NOT NULL, closed_at IS NOT NULL, coalesce(owner, '') FROM stitches WHERE job_id = $1`, job).Scan(&st.JobID,
		&st.UploadID, &parts, &st.NextIndex, &st.NextSeq, &st.Frames, &st.Bytes, &st.SHAState, &st.Appended, &st.Finalized, &st.Closed,
		&st.Owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return Stitch{}, fmt.Errorf("store: stitch %s: %w", job, ErrNotFound)
	}
	if err != nil {
		return Stitch{}, fmt.Errorf("store: stitch %s: %w", job, err)
	}
	if err := json.Unmarshal(parts, &st.Parts); err != nil {
		return Stitch{}, fmt.Errorf("store: stitch %s: parts: %w", job, err)
	}
	return st, nil
}

// AddPiece records segment p.Index's piece, appended to the preview, and
// moves the preview cursor past it. Recording a piece again (a stitcher
// that resumed) changes nothing.
func (s *Store) AddPiece(ctx context.Context, job, owner string, p Piece) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE stitches SET appended = greatest(appended, $3 + 1), updated_at = now()
			WHERE job_id = $1 AND owner = $2`, job, owner, p.Index)
		if err != nil {
			return fmt.Errorf("store: piece %s/%d: %w", job, p.Index, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: piece %s/%d: %w", job, p.Index, ErrLeased)
		}
		_, err = tx.Exec(ctx, `INSERT INTO stitch_pieces (job_id, idx, first_frame, frames, fragments, bytes)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id, idx) DO NOTHING`,
			job, p.Index, p.FirstFrame, p.Frames, p.Fragments, p.Bytes)
		if err != nil {
			return fmt.Errorf("store: piece %s/%d: %w", job, p.Index, err)
		}
		return nil
	})
}

// ListPieces returns the job's pieces from index from on, in order.
func (s *Store) ListPieces(ctx context.Context, job string, from int) ([]Piece, error) {
	rows, err := s.pool.Query(ctx, `SELECT idx, first_frame, frames, fragments, bytes, created_at FROM stitch_pieces
		WHERE job_id = $1 AND idx >= $2 ORDER BY idx`, job, from)
	if err != nil {
		return nil, fmt.Errorf("store: pieces of %s: %w", job, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Piece, error) {
		var p Piece
		err := r.Scan(&p.Index, &p.FirstFrame, &p.Frames, &p.Fragments, &p.Bytes, &p.CreatedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: pieces of %s: %w", job, err)
	}
	return ps, nil
}

// SavePart records an uploaded part and what the parts now hold.
func (s *Store) SavePart(ctx context.Context, owner string, st Stitch) error {
	parts, err := json.Marshal(st.Parts)
	if err != nil {
		return fmt.Errorf("store: stitch %s: %w", st.JobID, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE stitches SET parts = $3, next_idx = $4, next_seq = $5, frames = $6, bytes = $7,
		sha_state = $8, updated_at = now() WHERE job_id = $1 AND owner = $2`,
		st.JobID, owner, parts, st.NextIndex, st.NextSeq, st.Frames, st.Bytes, st.SHAState)
	if err != nil {
		return fmt.Errorf("store: stitch %s: %w", st.JobID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: stitch %s: %w", st.JobID, ErrLeased)
	}
	return nil
}

// MarkFinalized records that the job's final MP4 is complete and its job
// finished.
func (s *Store) MarkFinalized(ctx context.Context, job string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE stitches SET finalized_at = coalesce(finalized_at, now()), owner = NULL,
		updated_at = now() WHERE job_id = $1`, job); err != nil {
		return fmt.Errorf("store: finalize stitch %s: %w", job, err)
	}
	return nil
}

// CloseStitch records that the job ended without a final video (it was
// cancelled or failed): its playlist is closed and its upload aborted. It
// ends owner's lease. Closing again changes nothing; it fails with
// ErrLeased when owner does not hold the lease.
func (s *Store) CloseStitch(ctx context.Context, job, owner string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE stitches SET closed_at = coalesce(closed_at, now()), owner = NULL, updated_at = now()
		WHERE job_id = $1 AND (owner = $2 OR closed_at IS NOT NULL)`, job, owner)
	if err != nil {
		return fmt.Errorf("store: close stitch %s: %w", job, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: close stitch %s: %w", job, ErrLeased)
	}
	return nil
}

// EndedStitches lists up to limit jobs whose stitch must still be ended:
// jobs that ended (cancelled, failed, or a stopped live job) while their
// stitch was open (neither finalized nor closed), and stopped live jobs
// with committed segments whose stitch never opened (the stitcher missed
// both their DONEs and their stop). The stitcher's sweep ends them.
func (s *Store) EndedStitches(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `(SELECT s.job_id FROM stitches s JOIN jobs j ON j.id = s.job_id
		  WHERE s.finalized_at IS NULL AND s.closed_at IS NULL AND j.state IN ('cancelled', 'failed'))
		UNION ALL
		(SELECT j.id FROM jobs j WHERE j.live AND j.state = 'cancelled' AND j.segments_done > 0
		  AND NOT EXISTS (SELECT 1 FROM stitches s WHERE s.job_id = j.id))
		LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: ended stitches: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: ended stitches: %w", err)
	}
	return ids, nil
}
