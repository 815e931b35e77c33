package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// attemptRow is one attempt to upsert in a set-based statement.
type attemptRow struct {
	job     string
	idx     int
	attempt int
	outcome Outcome
	w       Worker
	t       Timings
}

// upsertAttempts is upsertAttempt for many rows in one statement (the same
// rules: outcomes only advance, worker fields fill in once). One verdict is
// undone: an attempt presumed abandoned (its task was delivered again, its
// worker thought gone) whose DONE then commits the segment was not
// abandoned: it becomes done, its abandonment's error cleared, so that the
// committed attempt is the one done. Rows naming
// the same attempt twice keep the first. An attempt started no later than
// its report's time less the work its timings account for: a RUNNING
// report read late, or skipped, does not shrink it on the timeline.
func upsertAttempts(ctx context.Context, tx pgx.Tx, rows []attemptRow) error {
	if len(rows) == 0 {
		return nil
	}
	type key struct {
		job          string
		idx, attempt int
	}
	seen := map[key]bool{}
	n := len(rows)
	jobs, outcomes := make([]string, 0, n), make([]string, 0, n)
	idxs, attempts := make([]int32, 0, n), make([]int32, 0, n)
	var wid, node, guuid, gname, backend, model, version []string
	var qms, dms, decms, ems, ums []int32
	for _, r := range rows {
		k := key{r.job, r.idx, r.attempt}
		if seen[k] {
			continue
		}
		seen[k] = true
		jobs, idxs, attempts, outcomes = append(jobs, r.job), append(idxs, int32(r.idx)), append(attempts, int32(r.attempt)), append(outcomes, string(r.outcome))
		wid, node, guuid, gname = append(wid, r.w.WorkerID), append(node, r.w.Node), append(guuid, r.w.GPUUUID), append(gname, r.w.GPUName)
		backend, model, version = append(backend, r.w.Backend), append(model, r.w.Model), append(version, r.w.ModelVersion)
		qms, dms, decms = append(qms, int32(r.t.QueueMS)), append(dms, int32(r.t.DenoiseMS)), append(decms, int32(r.t.DecodeMS))
		ems, ums = append(ems, int32(r.t.EncodeMS)), append(ums, int32(r.t.UploadMS))
	}
	_, err := tx.Exec(ctx, `
INSERT INTO attempts AS a (job_id, idx, attempt, outcome, worker_id, node, gpu_uuid, gpu_name, backend, model, model_version,
                           queue_ms, denoise_ms, decode_ms, encode_ms, upload_ms, started_at, finished_at)
SELECT j, i, at, o, nullif(w, ''), nullif(n, ''), nullif(gu, ''), nullif(gn, ''), nullif(b, ''), nullif(m, ''), nullif(v, ''),
       nullif(q, 0), nullif(d, 0), nullif(dc, 0), nullif(e, 0), nullif(u, 0),
       CASE WHEN o <> 'queued' THEN now() - make_interval(secs => (d + dc + e + u) / 1000.0) END,
       CASE WHEN o IN ('done', 'failed', 'duplicate') THEN now() END
FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::text[], $11::text[], $12::int[], $13::int[], $14::int[], $15::int[], $16::int[])
     AS x(j, i, at, o, w, n, gu, gn, b, m, v, q, d, dc, e, u)
ON CONFLICT (job_id, idx, attempt) DO UPDATE SET
    outcome = CASE
        WHEN a.outcome = 'abandoned' AND EXCLUDED.outcome = 'done' THEN 'done'
        WHEN a.outcome IN ('done', 'failed', 'duplicate', 'abandoned') THEN a.outcome
        WHEN array_position(ARRAY['queued', 'running', 'tail_ready', 'done', 'failed', 'duplicate', 'abandoned'], EXCLUDED.outcome)
           > array_position(ARRAY['queued', 'running', 'tail_ready', 'done', 'failed', 'duplicate', 'abandoned'], a.outcome)
        THEN EXCLUDED.outcome ELSE a.outcome END,
    worker_id = coalesce(a.worker_id, EXCLUDED.worker_id), node = coalesce(a.node, EXCLUDED.node),
    gpu_uuid = coalesce(a.gpu_uuid, EXCLUDED.gpu_uuid), gpu_name = coalesce(a.gpu_name, EXCLUDED.gpu_name),
    backend = coalesce(a.backend, EXCLUDED.backend), model = coalesce(a.model, EXCLUDED.model),
    model_version = coalesce(a.model_version, EXCLUDED.model_version),
    queue_ms = coalesce(EXCLUDED.queue_ms, a.queue_ms), denoise_ms = coalesce(EXCLUDED.denoise_ms, a.denoise_ms),
    decode_ms = coalesce(EXCLUDED.decode_ms, a.decode_ms), encode_ms = coalesce(EXCLUDED.encode_ms, a.encode_ms),
    upload_ms = coalesce(EXCLUDED.upload_ms, a.upload_ms),
    started_at = least(a.started_at, EXCLUDED.started_at),
    finished_at = CASE WHEN a.outcome = 'abandoned' AND EXCLUDED.outcome = 'done' THEN EXCLUDED.finished_at
        ELSE coalesce(a.finished_at, EXCLUDED.finished_at) END,
    error_class = CASE WHEN a.outcome = 'abandoned' AND EXCLUDED.outcome = 'done' THEN NULL ELSE a.error_class END,
    error_message = CASE WHEN a.outcome = 'abandoned' AND EXCLUDED.outcome = 'done' THEN NULL ELSE a.error_message END`,
		jobs, idxs, attempts, outcomes, wid, node, guuid, gname, backend, model, version, qms, dms, decms, ems, ums)
	if err != nil {
		return fmt.Errorf("attempts: %w", err)
	}
	return nil
}

// insertOutboxBatch inserts many outbox rows in one statement.
func insertOutboxBatch(ctx context.Context, tx pgx.Tx, msgs []OutboxMsg) error {
	if len(msgs) == 0 {
		return nil
	}
	ids, subjects := make([]string, len(msgs)), make([]string, len(msgs))
	payloads, headers := make([][]byte, len(msgs)), make([]map[string]string, len(msgs))
	notBefore := make([]*time.Time, len(msgs))
	for i, m := range msgs {
		ids[i], subjects[i], payloads[i], headers[i] = m.MsgID, m.Subject, m.Payload, headersOf(m)
		if !m.NotBefore.IsZero() {
			notBefore[i] = &msgs[i].NotBefore
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO outbox (msg_id, subject, payload, headers, not_before)
		SELECT id, subject, payload, headers, coalesce(nb, now())
		FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[], $5::timestamptz[]) AS m(id, subject, payload, headers, nb)
		ON CONFLICT (msg_id) DO NOTHING`,
		ids, subjects, payloads, headers, notBefore)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}
