-- Artifacts name the attempt that produced them, and a job has at most one
-- final output. The constraints are NOT VALID: they hold for every new row
-- without scanning the rows written before them.

-- +goose Up
ALTER TABLE artifacts ADD CONSTRAINT artifacts_attempt_fk
    FOREIGN KEY (job_id, idx, attempt) REFERENCES attempts (job_id, idx, attempt) ON DELETE CASCADE NOT VALID;
ALTER TABLE artifacts ADD CONSTRAINT artifacts_segment_has_attempt
    CHECK (kind NOT IN ('segment', 'tail') OR (idx IS NOT NULL AND attempt IS NOT NULL)) NOT VALID;
ALTER TABLE artifacts ADD CONSTRAINT artifacts_final_whole
    CHECK (kind <> 'final' OR (idx IS NULL AND attempt IS NULL AND sha256 IS NOT NULL)) NOT VALID;
CREATE UNIQUE INDEX artifacts_one_final ON artifacts (job_id) WHERE kind = 'final';

-- +goose Down
DROP INDEX artifacts_one_final;
ALTER TABLE artifacts DROP CONSTRAINT artifacts_final_whole;
ALTER TABLE artifacts DROP CONSTRAINT artifacts_segment_has_attempt;
ALTER TABLE artifacts DROP CONSTRAINT artifacts_attempt_fk;
