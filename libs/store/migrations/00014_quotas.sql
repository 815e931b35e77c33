-- Per-tenant quotas.
-- * quotas: a tenant's overrides of the services' default quotas; a NULL
--   column takes the default (the gateway's SPOOL_GATEWAY_QUOTA_*, the
--   dispatcher's SPOOL_DISPATCHER_QUOTA_RUNNING_SEGMENTS), and 0 means
--   unlimited. queued_jobs bounds the tenant's jobs not yet ended
--   (submitted, queued or running); running_segments the segments being
--   generated at once (queued or running, in every pool); daily_seconds
--   the seconds of video requested per UTC day.
-- * tenant_days: the video each tenant requested through the gateway on
--   each UTC day (by the gateway's clock), in milliseconds (sums stay
--   exact), counted in the transaction that records the submission: a
--   check reads one row.
-- * jobs_tenant_active: the queued-jobs count reads a tenant's unfinished
--   jobs only.

-- +goose Up
CREATE TABLE quotas (
    tenant           text PRIMARY KEY CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    queued_jobs      integer CHECK (queued_jobs >= 0),
    running_segments integer CHECK (running_segments >= 0),
    daily_seconds    bigint CHECK (daily_seconds >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_days (
    tenant      text NOT NULL,
    day         date NOT NULL,
    requested_ms bigint NOT NULL DEFAULT 0 CHECK (requested_ms >= 0),
    PRIMARY KEY (tenant, day)
);

CREATE INDEX jobs_tenant_active ON jobs (tenant) WHERE state IN ('queued', 'running');

-- +goose Down
DROP INDEX jobs_tenant_active;
DROP TABLE tenant_days;
DROP TABLE quotas;
