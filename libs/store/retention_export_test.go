package store

import "context"

// ExecForTest runs one statement, for tests that set up rows (uploads,
// job inputs, stitches) that no method of theirs writes.
func (s *Store) ExecForTest(ctx context.Context, sql string, args ...any) error {
	_, err := s.pool.Exec(ctx, sql, args...)
	return err
}
