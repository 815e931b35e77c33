-- Admission takes each live job's first ready segments in order: an index
-- of ready segments by job keeps that proportional to what is admitted,
-- not to the backlog.

-- +goose Up
CREATE INDEX segments_ready_by_job ON segments (job_id, idx) WHERE state = 'ready';

-- +goose Down
DROP INDEX segments_ready_by_job;
