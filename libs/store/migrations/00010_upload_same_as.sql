-- A presigned upload's row is kept, pending, until retention deletes its
-- prefix after its URL lapses (expires_at), whatever became of it: bytes
-- PUT again to the URL after a refusal or a completion are deleted then.
-- same_as records that its bytes were a tenant's existing upload, which a
-- completion answers with (again, when retried).

-- +goose Up
ALTER TABLE uploads ADD COLUMN same_as text REFERENCES uploads (id);

-- +goose Down
ALTER TABLE uploads DROP COLUMN same_as;
