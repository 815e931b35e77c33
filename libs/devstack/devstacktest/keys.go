package devstacktest

import (
	"context"
	"testing"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/store"
)

// Key creates an API key of the gateway for tenant in s, an admin key when
// admin is set, and returns it ("spool_<id>_<secret>") for a test's
// Authorization header. It stays in the stack's database, as tests' jobs
// do.
func Key(t testing.TB, s *store.Store, tenant string, admin bool) string {
	t.Helper()
	token, hash, err := apikey.Mint("")
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := apikey.Parse(token)
	name := t.Name()
	if len(name) > 200 {
		name = name[:200]
	}
	if _, err := s.CreateAPIKey(context.Background(), store.APIKey{ID: id, Tenant: tenant, Name: name, Admin: admin, Hash: hash}); err != nil {
		t.Fatal(err)
	}
	return token
}

// AdminKey is Key of an admin key of the default tenant: it sees and acts
// for every tenant, which ?tenant= or a spec's tenant names.
func AdminKey(t testing.TB, s *store.Store) string {
	t.Helper()
	return Key(t, s, "default", true)
}

// URLKey is a fresh key for the gateway's signed URLs
// (SPOOL_GATEWAY_URL_KEY).
func URLKey() string { return apikey.NewSecret() }
