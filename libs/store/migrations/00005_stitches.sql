-- The stitcher's cursor per job. The final MP4 is one multipart upload,
-- appended in segment order; a part holds whole segments' contributions.
-- next_idx, next_seq, frames, bytes and sha_state describe what the
-- uploaded parts hold; appended is how far the HLS preview (one piece per
-- segment, each an object) has come. A stitcher that restarts re-reads the
-- pieces past next_idx to rebuild the part it was filling.

-- +goose Up
CREATE TABLE stitches (
    job_id       text PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    upload_id    text NOT NULL,
    parts        jsonb NOT NULL DEFAULT '[]',
    next_idx     integer NOT NULL DEFAULT 0 CHECK (next_idx >= 0),
    next_seq     integer NOT NULL DEFAULT 1 CHECK (next_seq >= 1),
    frames       bigint NOT NULL DEFAULT 0 CHECK (frames >= 0),
    bytes        bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    sha_state    bytea,
    appended     integer NOT NULL DEFAULT 0 CHECK (appended >= next_idx),
    owner        text,
    lease_until  timestamptz,
    finalized_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stitch_pieces (
    job_id      text NOT NULL REFERENCES stitches (job_id) ON DELETE CASCADE,
    idx         integer NOT NULL CHECK (idx >= 0),
    first_frame bigint NOT NULL CHECK (first_frame >= 0),
    frames      integer NOT NULL CHECK (frames > 0),
    fragments   integer NOT NULL CHECK (fragments > 0),
    bytes       bigint NOT NULL CHECK (bytes > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, idx)
);

-- +goose Down
DROP TABLE stitch_pieces;
DROP TABLE stitches;
