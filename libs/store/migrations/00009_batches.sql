-- Batches, deletion and retention.
-- * batches: many job specs submitted in one request (POST /batches).
--   batch_jobs has one row per spec of the batch, by its index: the job it
--   became, or why it was refused. A job's row is written by the
--   dispatcher, after the batch's, so job_id has no foreign key; a job not
--   recorded yet is a submitted one.
-- * jobs.deleted_at: the job's objects (everything under jobs/<job>/) are
--   gone, by DELETE /jobs/{id} or by retention. The job keeps its state,
--   and its segments, attempts and artifacts stay as its lineage;
--   artifacts.deleted_at marks the objects that no longer exist.
-- * purge_claimed_until and purge_owner: a janitor's lease on a job or an
--   upload whose objects it is deleting. A janitor that dies mid-sweep
--   leaves a claim that lapses; another then takes the row and deletes
--   again (deleting an object twice is harmless).

-- +goose Up
CREATE TABLE batches (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,57}$'), -- leaves room for "-<index>" in a job id
    tenant     text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    jobs       integer NOT NULL CHECK (jobs > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX batches_tenant_created ON batches (tenant, created_at DESC, id DESC);

CREATE TABLE batch_jobs (
    batch_id      text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    idx           integer NOT NULL CHECK (idx >= 0),
    job_id        text,
    error_code    text,
    error_field   text,
    error_message text,
    PRIMARY KEY (batch_id, idx),
    CHECK ((job_id IS NULL) <> (error_code IS NULL))
);
CREATE INDEX batch_jobs_job ON batch_jobs (job_id) WHERE job_id IS NOT NULL;

ALTER TABLE jobs ADD COLUMN deleted_at timestamptz;
ALTER TABLE jobs ADD COLUMN purge_claimed_until timestamptz;
ALTER TABLE jobs ADD COLUMN purge_owner text;
-- The janitor's working set: finished jobs whose objects still exist.
CREATE INDEX jobs_retained ON jobs (finished_at) WHERE deleted_at IS NULL AND finished_at IS NOT NULL;

ALTER TABLE artifacts ADD COLUMN deleted_at timestamptz;

ALTER TABLE uploads ADD COLUMN purge_claimed_until timestamptz;
ALTER TABLE uploads ADD COLUMN purge_owner text;
CREATE INDEX uploads_pending_expiry ON uploads (expires_at) WHERE state = 'pending' AND deleted_at IS NULL;

-- +goose Down
DROP INDEX uploads_pending_expiry;
ALTER TABLE uploads DROP COLUMN purge_owner;
ALTER TABLE uploads DROP COLUMN purge_claimed_until;
ALTER TABLE artifacts DROP COLUMN deleted_at;
DROP INDEX jobs_retained;
ALTER TABLE jobs DROP COLUMN purge_owner;
ALTER TABLE jobs DROP COLUMN purge_claimed_until;
ALTER TABLE jobs DROP COLUMN deleted_at;
DROP TABLE batch_jobs;
DROP TABLE batches;
