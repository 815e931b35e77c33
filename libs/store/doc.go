// Package store is spool's Postgres layer, the system's source of truth,
// over a pgx/v5 pool. Every SQL statement of the system lives here.
//
// Migrations are embedded and applied at Open under a Postgres advisory
// lock, so services starting together migrate once. State changes are
// idempotent: a result delivered twice changes nothing the second time, and
// the first DONE attempt of a segment is the one committed.
package store
