-- What the rest of a job's life needs to know from its start:
-- * traceparent: the job's W3C trace context, so that every span about the
--   job (a sweep, a resumed stitch, a retry, the reconciler) joins its trace;
-- * live_ahead_s and live_start_at: a live job's pacing. Frame f is at the
--   live edge at live_start_at + f / fps (the clock starts when segment 0 is
--   first released); a segment whose first new frame lies more than
--   live_ahead_s past the edge waits;
-- * longest_piece: the frames of the longest piece the plan can produce,
--   which fixes the HLS target duration for the playlist's whole life;
-- * frames_done: the frames the committed segments add to the video.
-- A stitch is closed when its job ended without a final video (cancelled,
-- failed): its playlist has EXT-X-ENDLIST and its upload is aborted.

-- +goose Up
ALTER TABLE jobs ADD COLUMN traceparent text;
ALTER TABLE jobs ADD COLUMN live_ahead_s double precision CHECK (live_ahead_s > 0);
ALTER TABLE jobs ADD COLUMN live_start_at timestamptz;
ALTER TABLE jobs ADD COLUMN longest_piece integer CHECK (longest_piece > 0);
ALTER TABLE jobs ADD COLUMN frames_done bigint NOT NULL DEFAULT 0 CHECK (frames_done >= 0);
UPDATE jobs j SET
    frames_done = coalesce((SELECT sum(s.frames - s.overlap - s.trim_frames) FROM segments s
                            WHERE s.job_id = j.id AND s.state = 'done'), 0),
    longest_piece = (SELECT max(s.frames) FROM segments s WHERE s.job_id = j.id),
    live_ahead_s = CASE WHEN j.live THEN 30 END;
ALTER TABLE stitches ADD COLUMN closed_at timestamptz;
-- The stitcher's sweep looks for open stitches of jobs that ended, and for
-- stopped live jobs never finalized (a finalized one has succeeded).
CREATE INDEX stitches_open ON stitches (job_id) WHERE finalized_at IS NULL AND closed_at IS NULL;
CREATE INDEX jobs_stopped_live ON jobs (id) WHERE live AND state = 'cancelled';

-- +goose Down
DROP INDEX jobs_stopped_live;
DROP INDEX stitches_open;
ALTER TABLE stitches DROP COLUMN closed_at;
ALTER TABLE jobs DROP COLUMN frames_done;
ALTER TABLE jobs DROP COLUMN longest_piece;
ALTER TABLE jobs DROP COLUMN live_start_at;
ALTER TABLE jobs DROP COLUMN live_ahead_s;
ALTER TABLE jobs DROP COLUMN traceparent;
