package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is a row of api_keys: a key of the gateway, by its id. The
// secret itself is never stored: Hash is its argon2id hash (libs/apikey).
type APIKey struct {
	ID     string
	Tenant string // the tenant it acts for
	Name   string // a person's note: what it is for
	Admin  bool   // it acts for any tenant and manages keys
	Hash   string `json:"-"`
	// CreatedAt is set by CreateAPIKey.
	CreatedAt  time.Time
	RevokedAt  *time.Time // refused from then on
	LastUsedAt *time.Time // coarse (TouchAPIKey)
}

const keyColumns = `id, tenant, name, admin, hash, created_at, revoked_at, last_used_at`

func scanKey(row pgx.Row) (APIKey, error) {
	var k APIKey
	err := row.Scan(&k.ID, &k.Tenant, &k.Name, &k.Admin, &k.Hash, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt)
	return k, err
}

// CreateAPIKey records the key k (its CreatedAt is set here) and, in the
// same transaction, the audit entries given, and returns it as stored. An
// id that exists is ErrConflict.
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey, audit ...AuditEntry) (APIKey, error) {
	var got APIKey
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		got, err = scanKey(tx.QueryRow(ctx, `INSERT INTO api_keys (id, tenant, name, admin, hash) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO NOTHING RETURNING `+keyColumns, k.ID, k.Tenant, k.Name, k.Admin, k.Hash))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("key %s exists: %w", k.ID, ErrConflict)
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("store: create key %s: %w", k.ID, err)
	}
	return got, nil
}

// EnsureAPIKey records k unless a key of its id exists, and returns the
// key of that id as stored and whether it was recorded now: the caller
// compares an existing one with k. The audit entries are recorded with a
// new key only.
func (s *Store) EnsureAPIKey(ctx context.Context, k APIKey, audit ...AuditEntry) (APIKey, bool, error) {
	got, err := s.CreateAPIKey(ctx, k, audit...)
	if err == nil {
		return got, true, nil
	}
	if !errors.Is(err, ErrConflict) {
		return APIKey{}, false, err
	}
	got, err = s.GetAPIKey(ctx, k.ID)
	return got, false, err
}

// GetAPIKey returns the key id; ErrNotFound when there is none.
func (s *Store) GetAPIKey(ctx context.Context, id string) (APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, fmt.Errorf("store: key %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("store: key %s: %w", id, err)
	}
	return k, nil
}

// ListAPIKeys lists the keys of tenant ("" for every tenant's), revoked
// ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, tenant string) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE ($1 = '' OR tenant = $1) ORDER BY created_at, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes the key id now, unless it was revoked before (it
// then keeps its first revocation time), records the audit entries given
// in the same transaction when it revokes it now, and returns the key and
// whether it was revoked now. ErrNotFound when there is no such key.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, audit ...AuditEntry) (APIKey, bool, error) {
	var k APIKey
	var now bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		k, err = scanKey(tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING `+keyColumns, id))
		switch {
		case err == nil:
			now = true
			return insertAudit(ctx, tx, audit)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		k, err = scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return APIKey{}, false, fmt.Errorf("store: key %s: %w", id, err)
	}
	return k, now, nil
}

// TouchAPIKey stamps the key's last use at at.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = greatest(last_used_at, $2) WHERE id = $1`, id, at); err != nil {
		return fmt.Errorf("store: touch key %s: %w", id, err)
	}
	return nil
}
