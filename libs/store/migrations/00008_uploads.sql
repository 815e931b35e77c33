-- Media inputs.
-- * uploads: one row per uploaded file of a tenant, with what ffprobe found
--   in it. A streamed upload is 'ready' once probed; a presigned PUT is
--   'pending' until completed (and probed), and a pending row past
--   expires_at is abandoned. Identical bytes of one tenant are stored once:
--   (tenant, sha256) is unique among ready uploads, and a second upload of
--   the same bytes answers with the first one's row. deleted_at marks an
--   upload whose objects the janitor removed; the row stays for lineage.
-- * job_inputs: which uploads a job was made from, by role. It keeps an
--   upload alive while a job that is not finished refers to it, and is the
--   lineage of a job's media.
-- * segments.first_frame may now be negative: the first segment of an
--   extension without its input starts with the input's last frames, before
--   frame 0 of the output. Its new frames never are.
-- * jobs.input_frames and input_key: an extension with include_input starts
--   its output with the input video, re-encoded once at intake with the
--   workers' codec parameters into a fragmented MP4 at the job's size and
--   fps (input_key). Those input_frames frames are output frames
--   [0, input_frames), counted in total_frames; the first new frame is
--   frame input_frames.

-- +goose Up
CREATE TABLE uploads (
    id           text PRIMARY KEY CHECK (id ~ '^up-[a-z0-9]{1,61}$'),
    tenant       text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    state        text NOT NULL CHECK (state IN ('pending', 'ready')),
    object_key   text NOT NULL,
    content_type text NOT NULL DEFAULT '',
    kind         text CHECK (kind IN ('image', 'video', 'audio')),
    codec        text,
    width        integer CHECK (width > 0),
    height       integer CHECK (height > 0),
    fps          double precision CHECK (fps > 0),
    frames       bigint CHECK (frames >= 0),
    duration_s   double precision CHECK (duration_s >= 0),
    sample_rate  integer CHECK (sample_rate > 0),
    channels     integer CHECK (channels > 0),
    sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes        bigint CHECK (bytes > 0),
    max_bytes    bigint CHECK (max_bytes > 0),   -- a presigned PUT's announced size limit
    probe        jsonb,                           -- the probe as returned by the API
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    expires_at   timestamptz,                     -- pending: when the presigned PUT lapses
    last_used_at timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    CHECK (state = 'pending' OR (kind IS NOT NULL AND sha256 IS NOT NULL AND bytes IS NOT NULL AND completed_at IS NOT NULL))
);
CREATE UNIQUE INDEX uploads_tenant_sha256 ON uploads (tenant, sha256) WHERE state = 'ready' AND deleted_at IS NULL;
CREATE INDEX uploads_tenant_created ON uploads (tenant, created_at DESC, id DESC);
CREATE INDEX uploads_live ON uploads (last_used_at) WHERE deleted_at IS NULL;

CREATE TABLE job_inputs (
    job_id    text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    role      text NOT NULL CHECK (role IN ('image', 'video', 'audio', 'reference')),
    upload_id text NOT NULL REFERENCES uploads (id),
    PRIMARY KEY (job_id, role)
);
CREATE INDEX job_inputs_upload ON job_inputs (upload_id);

ALTER TABLE segments DROP CONSTRAINT segments_first_frame_check;
ALTER TABLE segments ADD CONSTRAINT segments_first_frame_check CHECK (first_frame + overlap >= 0);

ALTER TABLE jobs ADD COLUMN input_frames bigint NOT NULL DEFAULT 0 CHECK (input_frames >= 0);
ALTER TABLE jobs ADD COLUMN input_key text;
ALTER TABLE jobs ADD CONSTRAINT jobs_input_check CHECK ((input_frames = 0) = (input_key IS NULL));

-- +goose Down
ALTER TABLE jobs DROP CONSTRAINT jobs_input_check;
ALTER TABLE jobs DROP COLUMN input_key;
ALTER TABLE jobs DROP COLUMN input_frames;
ALTER TABLE segments DROP CONSTRAINT segments_first_frame_check;
ALTER TABLE segments ADD CONSTRAINT segments_first_frame_check CHECK (first_frame >= 0);
DROP TABLE job_inputs;
DROP TABLE uploads;
