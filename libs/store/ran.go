package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ModelRun is a model, at a version, that made some of a job's committed
// segments.
type ModelRun struct {
	Model    string `json:"model"`
	Version  string `json:"version"`
	Backend  string `json:"backend"`
	Segments int    `json:"segments"` // committed segments it made
}

// ModelsRan lists the models (name, version and backend, as their workers
// reported them) that made the job's committed segments so far, with how
// many each made, ordered by model and version; empty before the first
// commit.
func (s *Store) ModelsRan(ctx context.Context, jobID string) ([]ModelRun, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(a.model, ''), coalesce(a.model_version, ''), coalesce(a.backend, ''), count(*)
		FROM segments s JOIN attempts a ON a.job_id = s.job_id AND a.idx = s.idx AND a.attempt = s.committed_attempt
		WHERE s.job_id = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, jobID)
	if err != nil {
		return nil, fmt.Errorf("store: models that ran %s: %w", jobID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ModelRun, error) {
		var m ModelRun
		err := r.Scan(&m.Model, &m.Version, &m.Backend, &m.Segments)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: models that ran %s: %w", jobID, err)
	}
	return out, nil
}
