package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/store"
)

// TestAPIKeys: a key is recorded with its audit entry, hashed (its secret
// is in no column), listed per tenant, revoked once (revoking again keeps
// the first time and writes no second entry), and stamped when used.
func TestAPIKeys(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	tenant := fmt.Sprintf("keys%d", time.Now().UnixNano()%1e9)
	token, hash, err := apikey.Mint("")
	if err != nil {
		t.Fatal(err)
	}
	id, secret, _ := apikey.Parse(token)
	k, err := s.CreateAPIKey(ctx, store.APIKey{ID: id, Tenant: tenant, Name: "ci", Hash: hash},
		store.AuditEntry{Tenant: tenant, KeyID: "kadmin", Action: "key.create", Target: id, Detail: map[string]any{"name": "ci"}})
	if err != nil || k.ID != id || k.CreatedAt.IsZero() || k.RevokedAt != nil || k.Admin {
		t.Fatalf("create: %+v %v", k, err)
	}
	if _, err := s.CreateAPIKey(ctx, store.APIKey{ID: id, Tenant: tenant, Hash: hash}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the same id again: %v", err)
	}
	got, err := s.GetAPIKey(ctx, id)
	if err != nil || strings.Contains(fmt.Sprintf("%+v", got), secret) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if ok, _ := apikey.Verify(secret, got.Hash); !ok {
		t.Fatal("the stored hash does not verify the secret")
	}
	if _, err := s.GetAPIKey(ctx, "knone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing key: %v", err)
	}
	if list, err := s.ListAPIKeys(ctx, tenant); err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("list: %+v %v", list, err)
	}
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	if err := s.TouchAPIKey(ctx, id, at); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchAPIKey(ctx, id, at.Add(-time.Hour)); err != nil { // never goes back
		t.Fatal(err)
	}
	if got, _ := s.GetAPIKey(ctx, id); got.LastUsedAt == nil || !got.LastUsedAt.Equal(at) {
		t.Fatalf("last used %v, want %v", got.LastUsedAt, at)
	}
	audit := store.AuditEntry{Tenant: tenant, KeyID: "kadmin", Action: "key.revoke", Target: id}
	r1, now, err := s.RevokeAPIKey(ctx, id, audit)
	if err != nil || !now || r1.RevokedAt == nil {
		t.Fatalf("revoke: %+v %v %v", r1, now, err)
	}
	r2, now, err := s.RevokeAPIKey(ctx, id, audit)
	if err != nil || now || !r2.RevokedAt.Equal(*r1.RevokedAt) {
		t.Fatalf("revoke again: %+v %v %v", r2, now, err)
	}
	if _, _, err := s.RevokeAPIKey(ctx, "knone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke of a missing key: %v", err)
	}
	entries, next, err := s.ListAudit(ctx, store.ListAuditParams{Tenant: tenant})
	if err != nil || next != 0 || len(entries) != 2 || entries[0].Action != "key.revoke" || entries[1].Action != "key.create" ||
		entries[1].Detail["name"] != "ci" || entries[1].KeyID != "kadmin" || entries[1].Time.IsZero() {
		t.Fatalf("audit: %+v next %d %v", entries, next, err)
	}
	page, next, err := s.ListAudit(ctx, store.ListAuditParams{Tenant: tenant, Limit: 1})
	if err != nil || len(page) != 1 || next != page[0].ID {
		t.Fatalf("first page: %+v %d %v", page, next, err)
	}
	if page, next, err = s.ListAudit(ctx, store.ListAuditParams{Tenant: tenant, Limit: 1, Before: next}); err != nil || len(page) != 1 ||
		page[0].Action != "key.create" || next != 0 {
		t.Fatalf("second page: %+v %d %v", page, next, err)
	}
	if err := s.Audit(ctx, store.AuditEntry{Tenant: tenant, Action: "Bad Action"}); err == nil {
		t.Fatal("an action that is not a word was recorded")
	}
}
