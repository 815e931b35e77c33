-- Submissions the gateway accepted. POST /generate (and each accepted spec
-- of POST /batches) records its submission here before it answers 202,
-- then publishes it on spool.jobs.submit: a 202 means the job is in
-- Postgres, whatever JetStream loses afterwards. A dispatcher admits it
-- once, whichever way it arrives: from the stream, or re-driven from here
-- when no dispatcher has admitted it a little while after it was accepted.
-- * job_id is the job's id: a retried POST of the same spec is the same
--   submission; another spec under the same id is refused.
-- * spec is the JobSpec as protobuf, with its id (and tenant) set.
-- * traceparent is the W3C trace context of its job.submit span, so that
--   a re-driven job joins the trace its client started.
-- * admitted_at is set in the transaction that records the job (accepted
--   or rejected). Rows stay, as the jobs they became do.
-- * claimed_until and claimed_by: a dispatcher's lease on a submission it
--   is admitting (an intake of media takes minutes: it is renewed
--   meanwhile). Another dispatcher leaves it alone until the lease lapses
--   (its dispatcher died).

-- +goose Up
CREATE TABLE submissions (
    job_id        text PRIMARY KEY CHECK (job_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    tenant        text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    spec          bytea NOT NULL,
    traceparent   text,
    accepted_at   timestamptz NOT NULL DEFAULT now(),
    admitted_at   timestamptz,
    claimed_until timestamptz,
    claimed_by    text
);
-- The re-drive's working set: submissions no dispatcher has admitted.
CREATE INDEX submissions_waiting ON submissions (accepted_at) WHERE admitted_at IS NULL;

-- +goose Down
DROP TABLE submissions;
