package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/store"
)

// The admin API of keys: POST /keys, GET /keys, DELETE /keys/{id}, for
// admin keys alone (adminOnly). A key's secret is in the answer to its
// creation, once, and nowhere else: the store keeps its hash.

// maxKeyName is the longest name of a key, in characters.
const maxKeyName = 200

// keyView is a key as the API shows it: never its secret nor its hash.
type keyView struct {
	ID         string     `json:"id"`
	Tenant     string     `json:"tenant"`
	Name       string     `json:"name"`
	Admin      bool       `json:"admin"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"` // to the minute
}

func viewKey(k store.APIKey) keyView {
	return keyView{ID: k.ID, Tenant: k.Tenant, Name: k.Name, Admin: k.Admin, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

// keyRequest is the body of POST /keys. Its fields are read as they are
// sent, so that a null or another type is refused, not taken as empty.
type keyRequest struct {
	Tenant json.RawMessage `json:"tenant"`
	Name   json.RawMessage `json:"name"`
	Admin  json.RawMessage `json:"admin"`
}

// fields are the request's tenant, name and admin flag, or the name of the
// field that is not of its type.
func (k keyRequest) fields() (tenant, name string, admin bool, bad string) {
	if json.Unmarshal(k.Tenant, &tenant) != nil || len(k.Tenant) == 0 || k.Tenant[0] != '"' {
		return "", "", false, "tenant"
	}
	if len(k.Name) > 0 && (k.Name[0] != '"' || json.Unmarshal(k.Name, &name) != nil) {
		return "", "", false, "name"
	}
	if len(k.Admin) > 0 && (string(k.Admin) != "true" && string(k.Admin) != "false" || json.Unmarshal(k.Admin, &admin) != nil) {
		return "", "", false, "admin"
	}
	return tenant, name, admin, ""
}

// createKey is POST /keys: a new key of a tenant, its secret shown once.
func (g *Gateway) createKey(w http.ResponseWriter, r *http.Request) {
	var req keyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_argument", fmt.Sprintf("the body exceeds %d bytes", g.cfg.MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("the body: %v; want {\"tenant\": a tenant, \"name\": what the key is for, \"admin\": false}", err))
		return
	}
	tenant, name, admin, bad := req.fields()
	switch {
	case bad != "":
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: bad,
			Message: fmt.Sprintf("%s: want a %s", bad, map[string]string{"tenant": "tenant's name (a string)", "name": "string", "admin": "boolean"}[bad])})
		return
	case !ident.Valid(tenant):
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "tenant",
			Message: fmt.Sprintf("tenant %q: want %s", tenant, ident.Rule)})
		return
	case utf8.RuneCountInString(name) > maxKeyName || strings.ContainsFunc(name, func(c rune) bool { return c < ' ' || c == 0x7f }):
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "name",
			Message: fmt.Sprintf("name: want at most %d characters, none a control character", maxKeyName)})
		return
	}
	token, hash, err := apikey.Mint("")
	if err != nil {
		fail(w, err)
		return
	}
	id, _, _ := apikey.Parse(token)
	c := callerOf(r)
	k, err := g.store.CreateAPIKey(r.Context(), store.APIKey{ID: id, Tenant: tenant, Name: name, Admin: admin, Hash: hash},
		store.AuditEntry{Tenant: tenant, KeyID: c.KeyID, Action: actionKeyCreate, Target: id,
			Detail: map[string]any{"name": name, "admin": admin}})
	if err != nil {
		fail(w, err)
		return
	}
	g.log.Info("API key created", "key", id, "tenant", tenant, "admin", admin, "by", c.KeyID)
	out := struct {
		keyView
		Key string `json:"key"`
	}{viewKey(k), token}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
}

// listKeys is GET /keys: every key (?tenant=: that tenant's), revoked ones
// too, oldest first.
func (g *Gateway) listKeys(w http.ResponseWriter, r *http.Request) {
	tenant, ok := readScope(w, r)
	if !ok {
		return
	}
	keys, err := g.store.ListAPIKeys(r.Context(), tenant)
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Keys []keyView `json:"keys"`
	}{Keys: make([]keyView, len(keys))}
	for i, k := range keys {
		out.Keys[i] = viewKey(k)
	}
	writeJSON(w, http.StatusOK, out)
}

// revokeKey is DELETE /keys/{id}: the key is refused from the next request
// on. Revoking it again answers as the first time did.
func (g *Gateway) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !apikey.ValidID(id) {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "id", Message: fmt.Sprintf("key id %q: want %s", id, apikey.IDRule)})
		return
	}
	c := callerOf(r)
	k, err := g.store.GetAPIKey(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	k, now, err := g.store.RevokeAPIKey(r.Context(), id, store.AuditEntry{Tenant: k.Tenant, KeyID: c.KeyID, Action: actionKeyRevoke, Target: id})
	if err != nil {
		fail(w, err)
		return
	}
	if now {
		g.log.Info("API key revoked", "key", id, "tenant", k.Tenant, "by", c.KeyID)
	}
	writeJSON(w, http.StatusOK, viewKey(k))
}
