package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is a row of the audit log: who (KeyID) did what (Action) to
// what (Target), for which tenant.
type AuditEntry struct {
	ID     int64     // set by the store
	Time   time.Time // when; zero: now
	Tenant string    // the tenant acted for: the target's
	KeyID  string    // the API key that acted; "" for the gateway itself
	// Action is what was done, e.g. job.submit, batch.submit, job.cancel,
	// job.delete, key.create, key.revoke: a lowercase word with dots.
	Action string
	Target string // what it was done to: a job, batch or key id, a tenant
	// Detail says more, as JSON. It must never hold a secret.
	Detail map[string]any
}

// Audit records one entry.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if err := s.tx(ctx, func(tx pgx.Tx) error { return insertAudit(ctx, tx, []AuditEntry{e}) }); err != nil {
		return fmt.Errorf("store: audit %s of %s: %w", e.Action, e.Target, err)
	}
	return nil
}

func insertAudit(ctx context.Context, tx pgx.Tx, entries []AuditEntry) error {
	for _, e := range entries {
		detail := []byte("{}")
		if len(e.Detail) > 0 {
			var err error
			if detail, err = json.Marshal(e.Detail); err != nil {
				return fmt.Errorf("audit detail: %w", err)
			}
		}
		var at *time.Time
		if !e.Time.IsZero() {
			at = &e.Time
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (at, tenant, key_id, action, target, detail)
			VALUES (coalesce($1, now()), $2, $3, $4, $5, $6)`, at, e.Tenant, e.KeyID, e.Action, e.Target, detail); err != nil {
			return fmt.Errorf("audit %s: %w", e.Action, err)
		}
	}
	return nil
}

// ListAuditParams filter and page ListAudit.
type ListAuditParams struct {
	Tenant string // "" for all
	Action string // "" for all
	Target string // "" for all
	Limit  int    // 1..1000; 0 means 100
	// Before is the ID of the last entry of the previous page: list older
	// entries; 0 for the newest.
	Before int64
}

// ListAudit lists audit entries newest first, one page at a time; the
// returned cursor (the Before of the next page) is 0 on the last page.
func (s *Store) ListAudit(ctx context.Context, p ListAuditParams) ([]AuditEntry, int64, error) {
	if p.Limit == 0 {
		p.Limit = 100
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, 0, fmt.Errorf("store: list audit: limit %d: want 1..1000", p.Limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, tenant, key_id, action, target, detail FROM audit_log
		WHERE ($1 = '' OR tenant = $1) AND ($2 = '' OR action = $2) AND ($3 = '' OR target = $3) AND ($4::bigint = 0 OR id < $4::bigint)
		ORDER BY id DESC LIMIT $5`, p.Tenant, p.Action, p.Target, p.Before, p.Limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var detail []byte
		if err := r.Scan(&e.ID, &e.Time, &e.Tenant, &e.KeyID, &e.Action, &e.Target, &detail); err != nil {
			return e, err
		}
		return e, json.Unmarshal(detail, &e.Detail)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: list audit: %w", err)
	}
	var next int64
	if len(out) > p.Limit {
		out = out[:p.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}
