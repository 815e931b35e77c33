-- What the dispatcher needs to re-publish a segment at any time, and
-- delayed publishes for retries with backoff.

-- +goose Up
-- The segment's task, protobuf SegmentTask, without attempt and conditioning
-- key: a retry or a re-publish fills those in.
ALTER TABLE segments ADD COLUMN task bytea;
-- An outbox row is published no earlier than not_before.
ALTER TABLE outbox ADD COLUMN not_before timestamptz NOT NULL DEFAULT now();
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox (not_before, id) WHERE sent_at IS NULL;

-- +goose Down
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
ALTER TABLE outbox DROP COLUMN not_before;
ALTER TABLE segments DROP COLUMN task;
