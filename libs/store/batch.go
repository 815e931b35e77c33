package store

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// CommitDoneBatch is CommitSegmentDone for many results at once, in one
// transaction of a few round trips, for throughput: the segments are locked
// in one statement (in key order), every write is pipelined, and each job
// gets one progress update and one event (built by event from its new
// progress). The i-th answer says whether ds[i] was committed; a segment
// named twice in the batch is committed once.
func (s *Store) CommitDoneBatch(ctx context.Context, ds []SegmentDone, event func(job string, p Progress) (OutboxMsg, error)) ([]bool, error) {
	out := make([]bool, len(ds))
	if len(ds) == 0 {
		return out, nil
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		clear(out)
		jobs, idxs := make([]string, len(ds)), make([]int32, len(ds))
		for i, d := range ds {
			jobs[i], idxs[i] = d.JobID, int32(d.Index)
		}
		rows, err := tx.Query(ctx, `SELECT s.job_id, s.idx, s.state, s.committed_attempt
			FROM segments s JOIN unnest($1::text[], $2::int[]) AS k(job_id, idx) ON s.job_id = k.job_id AND s.idx = k.idx
			ORDER BY s.job_id, s.idx FOR UPDATE OF s`, jobs, idxs)
		if err != nil {
			return fmt.Errorf("lock segments: %w", err)
		}
		type key struct {
			job string
			idx int
		}
		type seg struct {
			state SegmentState
			done  *int
		}
		segs := map[key]*seg{}
		for rows.Next() {
			var k key
			sg := &seg{}
			if err := rows.Scan(&k.job, &k.idx, &sg.state, &sg.done); err != nil {
				rows.Close()
				return fmt.Errorf("lock segments: %w", err)
			}
			segs[k] = sg
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lock segments: %w", err)
		}
		b := &pgx.Batch{}
		perJob := map[string]int{}
		for i, d := range ds {
			sg, ok := segs[key{d.JobID, d.Index}]
			if !ok {
				continue // unknown segment: nothing to commit
			}
			if sg.done != nil || sg.state == SegCancelled || sg.state == SegFailed {
				if sg.done == nil || *sg.done != d.Attempt {
					queueAttempt(b, d.JobID, d.Index, d.Attempt, OutcomeDuplicate, d.Worker, d.Timings)
				}
				continue
			}
			attempt := d.Attempt
			sg.done, sg.state = &attempt, SegDone
			out[i] = true
			perJob[d.JobID]++
			queueAttempt(b, d.JobID, d.Index, d.Attempt, OutcomeDone, d.Worker, d.Timings)
			b.Queue(`UPDATE segments SET state = 'done', committed_attempt = $3, video_key = $4, video_sha256 = $5,
				video_bytes = $6, video_frames = $7, attempts = greatest(attempts, $3), updated_at = now()
				WHERE job_id = $1 AND idx = $2`, d.JobID, d.Index, d.Attempt, d.VideoKey, d.SHA256, d.Bytes, d.Frames)
			b.Queue(`INSERT INTO artifacts (key, job_id, kind, idx, attempt, sha256, bytes, frames)
				VALUES ($1, $2, 'segment', $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING`,
				d.VideoKey, d.JobID, d.Index, d.Attempt, d.SHA256, d.Bytes, d.Frames)
		}
		order := make([]string, 0, len(perJob))
		for j := range perJob {
			order = append(order, j)
		}
		sort.Strings(order)
		for _, j := range order {
			b.Queue(`UPDATE jobs SET segments_done = segments_done + $2, updated_at = now(),
				state = CASE WHEN state = 'queued' THEN 'running' ELSE state END, started_at = coalesce(started_at, now()),
				progress = CASE WHEN segments_total > 0 THEN least(1, (segments_done + $2)::float8 / segments_total) ELSE progress END
				WHERE id = $1 RETURNING state, segments_done, coalesce(segments_total, 0), progress`, j, perJob[j])
		}
		br := tx.SendBatch(ctx, b)
		for i := 0; i < b.Len()-len(order); i++ {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("commit batch: %w", err)
			}
		}
		var events []OutboxMsg
		for _, j := range order {
			var p Progress
			if err := br.QueryRow().Scan(&p.State, &p.SegmentsDone, &p.SegmentsTotal, &p.Progress); err != nil {
				br.Close()
				return fmt.Errorf("job %s progress: %w", j, err)
			}
			if event != nil {
				m, err := event(j, p)
				if err != nil {
					br.Close()
					return err
				}
				events = append(events, m)
			}
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("commit batch: %w", err)
		}
		return insertOutbox(ctx, tx, events)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
