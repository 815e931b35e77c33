-- Segments of independent jobs wait as 'ready' in Postgres and are admitted
-- to their pool's queue in fair order (priority, then tenants in turn).

-- +goose Up
ALTER TABLE segments DROP CONSTRAINT segments_state_check;
ALTER TABLE segments ADD CONSTRAINT segments_state_check
    CHECK (state IN ('pending', 'ready', 'queued', 'running', 'tail_ready', 'done', 'failed', 'cancelled'));
CREATE INDEX segments_ready ON segments (pool) WHERE state = 'ready';
CREATE INDEX segments_inflight ON segments (pool) WHERE state IN ('queued', 'running', 'tail_ready');

-- +goose Down
DROP INDEX segments_inflight;
DROP INDEX segments_ready;
UPDATE segments SET state = 'pending' WHERE state = 'ready';
ALTER TABLE segments DROP CONSTRAINT segments_state_check;
ALTER TABLE segments ADD CONSTRAINT segments_state_check
    CHECK (state IN ('pending', 'queued', 'running', 'tail_ready', 'done', 'failed', 'cancelled'));
