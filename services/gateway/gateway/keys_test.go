package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// as sends a request to srv with key ("" for none) and returns the status
// and the body.
func as(t *testing.T, srv *httptest.Server, key, method, path, body string) (int, string) {
	t.Helper()
	ctx := context.Background()
	if key == "" {
		ctx = withoutKey(ctx)
	}
	req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	c := &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// asJSON is as, with the body decoded.
func asJSON(t *testing.T, srv *httptest.Server, key, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, raw := as(t, srv, key, method, path, body)
	var v map[string]any
	_ = json.Unmarshal([]byte(raw), &v)
	return code, v
}

// TestKeys: an admin creates a tenant's key (its secret shown once, only
// its hash stored), lists keys (no secret, no hash), and revokes it, which
// takes effect at the key's next request though its verification was
// cached; a tenant's key is refused the admin routes, quotas' included
// (403); no key, a malformed one and a wrong secret are 401; every change
// is in the audit log.
func TestKeys(t *testing.T) {
	c := devstacktest.Connect(t, 0)
	srv := newGateway(t, gateway.Config{Pools: "default:ref,sim", MaxBody: 4096}, c)
	admin := keyOf(t, srv)
	tenant := freshTenant()
	code, v := asJSON(t, srv, admin, "POST", "/keys", `{"tenant":"`+tenant+`","name":"ci runner"}`)
	key, _ := v["key"].(string)
	id, _ := v["id"].(string)
	if code != 201 || v["tenant"] != tenant || v["name"] != "ci runner" || v["admin"] != false || !strings.HasPrefix(key, "spool_"+id+"_") {
		t.Fatalf("create: %d %v", code, v)
	}
	_, secret, err := apikey.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	// At rest: the row holds a hash of the secret, never the secret.
	row, err := c.Store.GetAPIKey(context.Background(), id)
	if err != nil || !strings.HasPrefix(row.Hash, "$argon2id$") || strings.Contains(fmt.Sprintf("%#v", row), secret) {
		t.Fatalf("the row: %+v %v", row, err)
	}
	code, raw := as(t, srv, admin, "GET", "/keys?tenant="+tenant, "")
	if code != 200 || !strings.Contains(raw, `"id":"`+id+`"`) || strings.Contains(raw, secret) || strings.Contains(raw, "argon2") ||
		strings.Contains(raw, `"key"`) || strings.Contains(raw, "hash") {
		t.Fatalf("list: %d %s", code, raw)
	}
	// The tenant's key works, twice (the second from the cache), and may
	// not manage keys.
	for range 2 {
		if code, raw := as(t, srv, key, "GET", "/jobs", ""); code != 200 {
			t.Fatalf("the new key: %d %s", code, raw)
		}
	}
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/keys", `{"tenant":"` + tenant + `","admin":true}`}, {"GET", "/keys", ""}, {"DELETE", "/keys/" + id, ""},
		{"GET", "/tenants/" + tenant + "/quota", ""}, {"PUT", "/tenants/" + tenant + "/quota", `{"queued_jobs":1000}`},
	} {
		if code, v := asJSON(t, srv, key, r.method, r.path, r.body); code != 403 || v["code"] != "permission_denied" ||
			!strings.Contains(fmt.Sprint(v["message"]), "admin") {
			t.Fatalf("%s %s with a tenant's key: %d %v", r.method, r.path, code, v)
		}
	}
	for name, k := range map[string]string{"no key": "", "not a key": "s3cret", "a wrong secret": "spool_" + id + "_" + strings.Repeat("A", 43),
		"no such key": "spool_knosuchkey_" + secret} {
		code, v := asJSON(t, srv, k, "GET", "/jobs", "")
		if code != 401 || v["code"] != "unauthenticated" || strings.Contains(fmt.Sprint(v), secret) {
			t.Fatalf("%s: %d %v", name, code, v)
		}
	}
	for _, body := range []string{`{"tenant":"Bad Tenant"}`, `{"name":"no tenant"}`, `{"tenant":"` + tenant + `","extra":1}`,
		`{"tenant":"` + tenant + `","name":"` + strings.Repeat("n", 201) + `"}`} {
		if code, v := asJSON(t, srv, admin, "POST", "/keys", body); code != 400 || v["code"] != "invalid_argument" {
			t.Fatalf("POST /keys %s: %d %v", body, code, v)
		}
	}
	// Revoked: refused from the next request on.
	code, v = asJSON(t, srv, admin, "DELETE", "/keys/"+id, "")
	if code != 200 || v["revoked_at"] == nil || v["key"] != nil {
		t.Fatalf("revoke: %d %v", code, v)
	}
	if code, v := asJSON(t, srv, key, "GET", "/jobs", ""); code != 401 || !strings.Contains(fmt.Sprint(v["message"]), "revoked") {
		t.Fatalf("a revoked key: %d %v", code, v)
	}
	if again, w := asJSON(t, srv, admin, "DELETE", "/keys/"+id, ""); again != 200 || w["revoked_at"] != v["revoked_at"] {
		t.Fatalf("revoke again: %d %v", again, w)
	}
	if code, v := asJSON(t, srv, admin, "DELETE", "/keys/knosuchkey", ""); code != 404 || v["code"] != "not_found" {
		t.Fatalf("revoke of no key: %d %v", code, v)
	}
	adminID, _, _ := apikey.Parse(admin)
	code, v = asJSON(t, srv, admin, "GET", "/audit?tenant="+tenant, "")
	entries, _ := v["entries"].([]any)
	if code != 200 || len(entries) != 2 {
		t.Fatalf("audit: %d %v", code, v)
	}
	for i, want := range []string{"key.revoke", "key.create"} {
		e := entries[i].(map[string]any)
		if e["action"] != want || e["target"] != id || e["key_id"] != adminID || e["tenant"] != tenant {
			t.Fatalf("audit entry %d: %v, want %s of %s by %s", i, e, want, id, adminID)
		}
	}
	if raw := fmt.Sprint(v); strings.Contains(raw, secret) {
		t.Fatal("the audit log holds the secret")
	}
	// A quota change is audited too, by the admin key that made it.
	if code, raw := as(t, srv, admin, "PUT", "/tenants/"+tenant+"/quota", `{"queued_jobs":7}`); code != 200 {
		t.Fatalf("PUT quota: %d %s", code, raw)
	}
	code, v = asJSON(t, srv, admin, "GET", "/audit?tenant="+tenant+"&action=quota.set", "")
	if entries, _ := v["entries"].([]any); code != 200 || len(entries) != 1 || entries[0].(map[string]any)["key_id"] != adminID ||
		!strings.Contains(fmt.Sprint(entries[0]), "queued_jobs=7") {
		t.Fatalf("the quota change's audit entry: %d %v", code, v)
	}
}

// TestBootstrapAdminKey: SPOOL_GATEWAY_ADMIN_KEY is recorded, hashed, at
// start, and is an admin key; starting again with it changes nothing;
// another secret under its id is refused; revoked, it stays revoked.
func TestBootstrapAdminKey(t *testing.T) {
	c := devstacktest.Connect(t, 0)
	ctx := context.Background()
	id := fmt.Sprintf("boot%d", time.Now().UnixNano()%1e12)
	token, _, err := apikey.Mint(id)
	if err != nil {
		t.Fatal(err)
	}
	start := func(key string) (*httptest.Server, error) {
		g, err := gateway.New(testConfig(gateway.Config{Pools: "default:ref,sim", MaxBody: 4096, AdminKey: config.Secret(key)}), c.Bus, c.Store, c.Blob, quiet())
		if err != nil {
			return nil, err
		}
		if err := g.EnsureAdminKey(ctx); err != nil {
			return nil, err
		}
		srv := httptest.NewServer(g.Handler())
		t.Cleanup(srv.Close)
		return srv, nil
	}
	srv, err := start(token)
	if err != nil {
		t.Fatal(err)
	}
	if code, raw := as(t, srv, token, "GET", "/keys", ""); code != 200 || !strings.Contains(raw, `"id":"`+id+`","tenant":"default","name":"bootstrap`) {
		t.Fatalf("the bootstrap key: %d %s", code, raw)
	}
	if _, err := start(token); err != nil {
		t.Fatalf("a second start: %v", err)
	}
	other, _, _ := apikey.Mint(id)
	if _, err := start(other); err == nil || strings.Contains(err.Error(), other) {
		t.Fatalf("another secret under the id: %v", err)
	}
	if _, err := start("not-a-key"); err == nil || !strings.Contains(err.Error(), "SPOOL_GATEWAY_ADMIN_KEY") {
		t.Fatalf("a malformed key: %v", err)
	}
	if _, _, err := c.Store.RevokeAPIKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	srv, err = start(token)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := as(t, srv, token, "GET", "/keys", ""); code != 401 {
		t.Fatalf("the revoked bootstrap key: %d", code)
	}
	if k, err := c.Store.GetAPIKey(ctx, id); err != nil || k.RevokedAt == nil || !k.Admin {
		t.Fatalf("the row: %+v %v", k, err)
	}
}
