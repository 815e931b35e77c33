package store

import (
	"context"
	"fmt"
)

// ServerStats are Postgres's cumulative counters for what benchmarks divide
// by time: transactions committed in spool's database, and the WAL's
// flushes to disk and bytes, server-wide. Postgres publishes a backend's
// counts within about a second of them, so they suit rates over runs of
// several seconds.
type ServerStats struct {
	Commits int64 // pg_stat_database.xact_commit
	// WALSyncs counts the WAL's fsyncs (none with fsync off): with group
	// commit, fewer than Commits.
	WALSyncs int64
	WALBytes int64
}

// ServerStats reads the counters now.
func (s *Store) ServerStats(ctx context.Context) (ServerStats, error) {
	var st ServerStats
	err := s.pool.QueryRow(ctx, `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
		w.wal_sync, w.wal_bytes::bigint FROM pg_stat_wal w`).Scan(&st.Commits, &st.WALSyncs, &st.WALBytes)
	if err != nil {
		return ServerStats{}, fmt.Errorf("store: server stats: %w", err)
	}
	return st, nil
}
