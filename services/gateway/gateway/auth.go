package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
)

// API keys. Every route but the public ones (health, the OpenAPI document,
// the dashboard's files) wants an API key, "Authorization: Bearer
// spool_<id>_<secret>" (libs/apikey); the preview and download routes take
// a signed URL instead (signed.go). A request reads its key's row every
// time, so a revoked key is refused from the next request on, on every
// replica. Checking the secret against the row's argon2id hash costs tens
// of milliseconds and 19 MiB, so a verification that succeeded is
// remembered for verifiedTTL, keyed by the SHA-256 of the token and valid
// only while the row holds the same hash: a client polling /status pays
// it once.

// Bounds of the verifications remembered, and how often a key's
// last_used_at is stamped.
const (
	verifiedTTL = 5 * time.Minute
	verifiedMax = 10_000
	touchEvery  = time.Minute
)

// caller is who a request acts as.
type caller struct {
	KeyID  string
	Tenant string // the key's tenant (a signed URL's: its job's, for the rate limit alone)
	Admin  bool   // acts for any tenant, manages keys
	// Job is set for a signed URL: the one job whose preview and video the
	// request may read, and nothing else.
	Job string
}

type callerKey struct{}

// callerOf is who r acts as, as auth found it.
func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// keyring remembers verified tokens and when each key was last stamped.
type keyring struct {
	mu       sync.Mutex
	verified map[[32]byte]verification
	touched  map[string]time.Time
	slots    chan struct{} // argon2id verifications at once
}

type verification struct {
	hash  string // the row's hash the token was verified against
	until time.Time
}

func newKeyring(parallel int) *keyring {
	return &keyring{verified: map[[32]byte]verification{}, touched: map[string]time.Time{}, slots: make(chan struct{}, parallel)}
}

// known reports whether token was verified against hash lately.
func (k *keyring) known(sum [32]byte, hash string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.verified[sum]
	return ok && v.hash == hash && now.Before(v.until)
}

// remember records a verification of token against hash.
func (k *keyring) remember(sum [32]byte, hash string, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.verified) >= verifiedMax {
		for s, v := range k.verified {
			if !now.Before(v.until) {
				delete(k.verified, s)
			}
		}
		if len(k.verified) >= verifiedMax {
			clear(k.verified)
		}
	}
	k.verified[sum] = verification{hash: hash, until: now.Add(verifiedTTL)}
}

// due reports whether key id's last use should be stamped now, and marks
// it stamped.
func (k *keyring) due(id string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.touched[id]) < touchEvery {
		return false
	}
	if len(k.touched) >= verifiedMax {
		clear(k.touched)
	}
	k.touched[id] = now
	return true
}

// verify checks secret against hash, waiting for a slot.
func (k *keyring) verify(ctx context.Context, secret, hash string) (bool, error) {
	select {
	case k.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-k.slots }()
	return apikey.Verify(secret, hash)
}

// Authentication failures, answered 401.
var (
	errNoKey  = errors.New("a valid 'Authorization: Bearer <API key>' header is required (an admin creates keys: spoolctl keys create)")
	errBadKey = errors.New("the API key is not valid")
)

// revokedError is a key that was revoked.
type revokedError struct {
	id string
	at time.Time
}

func (e *revokedError) Error() string {
	return fmt.Sprintf("API key %s was revoked at %s", e.id, e.at.UTC().Format(time.RFC3339))
}

// authenticate finds who r acts as from its API key.
func (g *Gateway) authenticate(ctx context.Context, header string) (caller, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return caller{}, errNoKey
	}
	id, secret, err := apikey.Parse(strings.TrimSpace(token))
	if err != nil {
		return caller{}, errBadKey
	}
	k, err := g.store.GetAPIKey(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return caller{}, errBadKey
	case err != nil:
		return caller{}, err
	case k.RevokedAt != nil:
		return caller{}, &revokedError{id: id, at: *k.RevokedAt}
	}
	now := time.Now()
	sum := sha256.Sum256([]byte(token))
	if !g.keys.known(sum, k.Hash, now) {
		ok, err := g.keys.verify(ctx, secret, k.Hash)
		switch {
		case err != nil:
			g.log.Error("an API key's stored hash cannot be read", "key", id, "error", err)
			return caller{}, errBadKey
		case !ok:
			return caller{}, errBadKey
		}
		g.keys.remember(sum, k.Hash, now)
	}
	if g.keys.due(id, now) {
		if err := g.store.TouchAPIKey(ctx, id, now); err != nil {
			g.log.Warn("an API key's last use is not stamped", "key", id, "error", err)
		}
	}
	return caller{KeyID: k.ID, Tenant: k.Tenant, Admin: k.Admin}, nil
}

// auth lets a request through with a valid API key, or, when signed is
// set, a valid signed URL of the {id} job (signed.go); others are answered
// 401 (no or a bad key) or 403 (a bad signature).
func (g *Gateway) auth(h http.HandlerFunc, signed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		var c caller
		var err error
		if signed && !signedForm(w, r) {
			return
		}
		if signed && header == "" && r.URL.Query().Has("sig") {
			if err := g.checkSigned(r, r.PathValue("id")); err != nil {
				writeError(w, http.StatusForbidden, "permission_denied", err.Error())
				return
			}
			// A player counts against its job's tenant (the rate limit).
			c = caller{Job: r.PathValue("id")}
			if c.Tenant, err = g.store.JobTenant(r.Context(), c.Job); err != nil && !errors.Is(err, store.ErrNotFound) {
				fail(w, err)
				return
			}
		} else if c, err = g.authenticate(r.Context(), header); err != nil {
			var re *revokedError
			if !errors.Is(err, errNoKey) && !errors.Is(err, errBadKey) && !errors.As(err, &re) {
				fail(w, err)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="spool"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", err.Error())
			return
		}
		ctx := context.WithValue(r.Context(), callerKey{}, c)
		if c.Tenant != "" {
			ctx = contextWithTenant(ctx, c.Tenant) // whose rate limit the request counts against (ratelimit.go)
		}
		h(w, r.WithContext(ctx))
	}
}

// adminOnly answers 403 to a key that is not an admin's.
func adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c := callerOf(r); !c.Admin {
			writeError(w, http.StatusForbidden, "permission_denied",
				fmt.Sprintf("%s %s wants an admin key; key %s is tenant %s's", r.Method, r.URL.Path, c.KeyID, c.Tenant))
			return
		}
		h(w, r)
	}
}

// EnsureAdminKey records the bootstrap admin key, SPOOL_GATEWAY_ADMIN_KEY,
// hashed, unless a key of its id exists. An existing one must be an admin
// key with the same secret; one revoked stays revoked (a warning says so).
// Nothing happens without one.
func (g *Gateway) EnsureAdminKey(ctx context.Context) error {
	if g.cfg.AdminKey == "" {
		return nil
	}
	id, secret, err := apikey.Parse(g.cfg.AdminKey.Reveal())
	if err != nil {
		return fmt.Errorf("gateway: SPOOL_GATEWAY_ADMIN_KEY: %w", err)
	}
	hash, err := apikey.Hash(secret)
	if err != nil {
		return err
	}
	k, created, err := g.store.EnsureAPIKey(ctx, store.APIKey{ID: id, Tenant: jobspec.DefaultTenant, Name: "bootstrap (SPOOL_GATEWAY_ADMIN_KEY)",
		Admin: true, Hash: hash}, store.AuditEntry{Tenant: jobspec.DefaultTenant, Action: actionKeyCreate, Target: id,
		Detail: map[string]any{"admin": true, "bootstrap": true}})
	if err != nil {
		return fmt.Errorf("gateway: the bootstrap admin key: %w", err)
	}
	if created {
		g.log.Info("bootstrap admin key recorded", "key", id)
		return nil
	}
	if ok, err := apikey.Verify(secret, k.Hash); err != nil || !ok || !k.Admin {
		return fmt.Errorf("gateway: SPOOL_GATEWAY_ADMIN_KEY: key %s exists with another secret, or is no admin key: give the bootstrap key another id", id)
	}
	if k.RevokedAt != nil {
		g.log.Warn("the bootstrap admin key SPOOL_GATEWAY_ADMIN_KEY was revoked, and stays so: set another", "key", id)
	}
	return nil
}
