-- Tenants' API keys and the audit log.
-- * api_keys: one row per key of the gateway. A key is the string
--   "spool_<id>_<secret>"; only an argon2id hash of the secret is kept
--   (hash, a PHC string: its parameters travel with it), never the secret.
--   A key acts for its tenant; an admin key for any (and manages keys).
--   revoked_at set: the key is refused from then on; the row stays, as the
--   audit log names it. last_used_at is coarse (the gateway stamps it at
--   most once a minute per key).
-- * audit_log: who did what, for whom: submissions, cancels, deletions,
--   key and quota changes. tenant is the tenant acted for (the target's),
--   key_id the key that acted (none for what the gateway does itself, e.g.
--   the bootstrap key). detail is JSON and never holds a secret.

-- +goose Up
CREATE TABLE api_keys (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9]{0,31}$'),
    tenant       text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name         text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    admin        boolean NOT NULL DEFAULT false,
    hash         text NOT NULL CHECK (hash LIKE '$argon2id$%'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

CREATE TABLE audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    tenant text NOT NULL DEFAULT '',
    key_id text NOT NULL DEFAULT '',
    action text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    target text NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON audit_log (tenant, id DESC);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE api_keys;
