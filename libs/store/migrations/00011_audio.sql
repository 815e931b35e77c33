-- Sound. A job with audio (jobs.audio_key) carries the AAC that intake
-- encoded once from its audio upload, by stream copy, in its final video
-- and its preview: audio_key names that encode's manifest under the
-- upload's derived objects (uploads/<tenant>/<upload>/derived/aac/…).
-- waveform_key names the audio's loudness envelope (peaks per 10 ms) that
-- the dashboard draws under the segment timeline. Both are NULL for a
-- silent job.

-- +goose Up
ALTER TABLE jobs ADD COLUMN audio_key text;
ALTER TABLE jobs ADD COLUMN waveform_key text;

-- +goose Down
ALTER TABLE jobs DROP COLUMN waveform_key;
ALTER TABLE jobs DROP COLUMN audio_key;
