package store

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// CommitDoneBatch commits DONE results: the first DONE attempt of a
// segment is committed (the segment becomes done with its video, the
// segment artifact is recorded, the attempt's outcome is done, the job's
// progress moves and a queued job becomes running). Any later DONE, another
// attempt's or the committed one delivered again, changes nothing of the
// segment; another attempt's is recorded as a duplicate. A DONE of an
// unknown, failed or cancelled segment commits nothing.
//
// It is one transaction of a few round trips, for throughput: the segments
// are locked in one statement (in key order), and each job gets one
// progress update and one event (built by event from its new progress;
// event may be nil). The i-th answer says whether ds[i] was committed; a
// segment named twice in the batch is committed once. Pass a single result
// to commit one.
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
		rows, err := tx.Query(ctx, `SELECT s.job_id, s.idx, s.state, s.committed_attempt, s.frames - s.overlap - s.trim_frames
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
			state     SegmentState
			done      *int
			newFrames int64 // the frames it adds to the video
		}
		segs := map[key]*seg{}
		for rows.Next() {
			var k key
			sg := &seg{}
			if err := rows.Scan(&k.job, &k.idx, &sg.state, &sg.done, &sg.newFrames); err != nil {
				rows.Close()
				return fmt.Errorf("lock segments: %w", err)
			}
			segs[k] = sg
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lock segments: %w", err)
		}
		var atts []attemptRow
		var cj, ck, csha []string
		var ci, ca, cf []int32
		var cb []int64
		perJob, framesPerJob := map[string]int{}, map[string]int64{}
		for i, d := range ds {
			sg, ok := segs[key{d.JobID, d.Index}]
			if !ok {
				continue // unknown segment: nothing to commit
			}
			if sg.done != nil || sg.state == SegCancelled || sg.state == SegFailed {
				if sg.done == nil || *sg.done != d.Attempt {
					atts = append(atts, attemptRow{d.JobID, d.Index, d.Attempt, OutcomeDuplicate, d.Worker, d.Timings})
				}
				continue
			}
			attempt := d.Attempt
			sg.done, sg.state = &attempt, SegDone
			out[i] = true
			perJob[d.JobID]++
			framesPerJob[d.JobID] += sg.newFrames
			atts = append(atts, attemptRow{d.JobID, d.Index, d.Attempt, OutcomeDone, d.Worker, d.Timings})
			cj, ci, ca, ck = append(cj, d.JobID), append(ci, int32(d.Index)), append(ca, int32(d.Attempt)), append(ck, d.VideoKey)
			csha, cb, cf = append(csha, d.SHA256), append(cb, d.Bytes), append(cf, int32(d.Frames))
		}
		if err := upsertAttempts(ctx, tx, atts); err != nil {
			return err
		}
		if len(cj) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE segments s SET state = 'done', committed_attempt = c.a, video_key = nullif(c.k, ''),
				video_sha256 = nullif(c.sha, ''), video_bytes = c.b, video_frames = c.f, attempts = greatest(s.attempts, c.a), updated_at = now()
				FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::int[]) AS c(j, i, a, k, sha, b, f)
				WHERE s.job_id = c.j AND s.idx = c.i`, cj, ci, ca, ck, csha, cb, cf); err != nil {
				return fmt.Errorf("commit segments: %w", err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO artifacts (key, job_id, kind, idx, attempt, sha256, bytes, frames)
				SELECT k, j, 'segment', i, a, sha, b, f
				FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::int[]) AS c(j, i, a, k, sha, b, f)
				WHERE k <> '' -- no video: a segment of the discard encoder (benchmarks only)
				ON CONFLICT (key) DO NOTHING`, cj, ci, ca, ck, csha, cb, cf); err != nil {
				return fmt.Errorf("commit artifacts: %w", err)
			}
		}
		order := make([]string, 0, len(perJob))
		for j := range perJob {
			order = append(order, j)
		}
		sort.Strings(order)
		var events []OutboxMsg
		for _, j := range order {
			var p Progress
			if err := tx.QueryRow(ctx, `UPDATE jobs SET segments_done = segments_done + $2, frames_done = frames_done + $3, updated_at = now(),
				state = CASE WHEN state = 'queued' THEN 'running' ELSE state END, started_at = coalesce(started_at, now()),
				progress = CASE WHEN segments_total > 0 THEN least(1, (segments_done + $2)::float8 / segments_total) ELSE progress END
				WHERE id = $1 RETURNING state, segments_done, coalesce(segments_total, 0), progress`, j, perJob[j], framesPerJob[j]).
				Scan(&p.State, &p.SegmentsDone, &p.SegmentsTotal, &p.Progress); err != nil {
				return fmt.Errorf("job %s progress: %w", j, err)
			}
			if event != nil {
				m, err := event(j, p)
				if err != nil {
					return err
				}
				events = append(events, m)
			}
		}
		return insertOutboxBatch(ctx, tx, events)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
