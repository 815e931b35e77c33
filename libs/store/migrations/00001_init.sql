-- The schema of spool: Postgres is the source of truth. State changes are
-- guarded by CHECKs and made idempotent by keys.

-- +goose Up
CREATE TABLE jobs (
    id             text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    tenant         text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    priority       smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 9),
    pool           text NOT NULL,
    model          text NOT NULL,
    mode           text NOT NULL CHECK (mode IN ('chain', 'independent')),
    state          text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'rejected')),
    spec           jsonb NOT NULL,            -- the JobSpec as submitted, protojson
    live           boolean NOT NULL DEFAULT false,
    total_frames   bigint CHECK (total_frames > 0),   -- null when live
    fps            integer,
    width          integer,
    height         integer,
    segments_total integer CHECK (segments_total > 0), -- null when live
    segments_done  integer NOT NULL DEFAULT 0 CHECK (segments_done >= 0),
    progress       double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    final_key      text,
    final_sha256   text,
    final_bytes    bigint,
    final_frames   bigint,
    error_code     text,
    error_field    text,
    error_message  text,
    trace_id       text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    CHECK (live = (total_frames IS NULL)),
    CHECK (state <> 'rejected' OR error_code IS NOT NULL)
);
-- Listing, newest first, overall and per tenant (keyset paging).
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_tenant_created ON jobs (tenant, created_at DESC, id DESC);
-- The dispatcher's and reconciler's working set.
CREATE INDEX jobs_active ON jobs (state, priority DESC, created_at) WHERE state IN ('queued', 'running');

CREATE TABLE segments (
    job_id            text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx               integer NOT NULL CHECK (idx >= 0),
    first_frame       bigint NOT NULL CHECK (first_frame >= 0),
    frames            integer NOT NULL CHECK (frames > 0),
    overlap           integer NOT NULL CHECK (overlap >= 0 AND overlap < frames),
    trim_frames       integer NOT NULL DEFAULT 0 CHECK (trim_frames >= 0 AND trim_frames < frames - overlap),
    prompt            text NOT NULL,
    seed              bigint NOT NULL,        -- the uint64 seed, two's complement
    pool              text NOT NULL,
    state             text NOT NULL CHECK (state IN ('pending', 'queued', 'running', 'tail_ready', 'done', 'failed', 'cancelled')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    conditioning_key  text,
    committed_attempt integer,
    tail_key          text,
    video_key         text,
    video_sha256      text,
    video_bytes       bigint,
    video_frames      integer,
    last_heartbeat_at timestamptz,
    queued_at         timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, idx),
    CHECK ((state = 'done') = (committed_attempt IS NOT NULL))
);
-- The reconciler looks for queued or running segments nobody touched lately.
CREATE INDEX segments_stale ON segments (updated_at) WHERE state IN ('queued', 'running', 'tail_ready');

CREATE TABLE attempts (
    job_id        text NOT NULL,
    idx           integer NOT NULL,
    attempt       integer NOT NULL CHECK (attempt >= 1),
    outcome       text NOT NULL CHECK (outcome IN ('queued', 'running', 'tail_ready', 'done', 'failed', 'duplicate', 'abandoned')),
    worker_id     text,
    node          text,
    gpu_uuid      text,
    gpu_name      text,
    backend       text,
    model         text,
    model_version text,
    queue_ms      integer,
    denoise_ms    integer,
    decode_ms     integer,
    encode_ms     integer,
    upload_ms     integer,
    error_class   text,
    error_message text,
    queued_at     timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (job_id, idx, attempt),
    FOREIGN KEY (job_id, idx) REFERENCES segments (job_id, idx) ON DELETE CASCADE
);

CREATE TABLE artifacts (
    key        text PRIMARY KEY CHECK (key LIKE 'jobs/' || job_id || '/%'),
    job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('segment', 'tail', 'final', 'hls')),
    idx        integer,
    attempt    integer,
    sha256     text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes      bigint CHECK (bytes >= 0),
    frames     bigint CHECK (frames >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artifacts_job ON artifacts (job_id, kind, idx);

-- Rows to publish, written in the same transaction as the state change
-- they announce; msg_id is the Nats-Msg-Id, unique so a replay is a no-op.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    msg_id     text NOT NULL UNIQUE,
    subject    text NOT NULL,
    payload    bytea NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE artifacts;
DROP TABLE attempts;
DROP TABLE segments;
DROP TABLE jobs;
