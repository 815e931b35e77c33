package gateway

import (
	"fmt"
	"net/http"

	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/store"
)

// Tenancy. A tenant's key acts for its tenant alone: what it creates is
// its tenant's, a ?tenant= or a spec naming another tenant is refused
// (400), it lists only its tenant's, and another tenant's job, upload or
// batch is answered exactly as one that does not exist (404). An admin key
// acts for any tenant: ?tenant= (or a spec's tenant) names the one it
// creates for, else its own; and ?tenant= filters what it reads, which is
// every tenant's without one.

// refuseTenant answers a tenant's key naming another tenant.
func refuseTenant(w http.ResponseWriter, c caller, named string) {
	writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "tenant",
		Message: fmt.Sprintf("tenant %q: this API key acts for tenant %q alone; leave the tenant out, or name %q", named, c.Tenant, c.Tenant)})
}

// readScope is the tenant whose things the request may read: a tenant's
// key's own, an admin's ?tenant=, or "" for every tenant's (an admin
// without ?tenant=). A ?tenant= that a tenant's key may not name is
// answered 400.
func readScope(w http.ResponseWriter, r *http.Request) (string, bool) {
	q, ok := queryTenant(w, r)
	if !ok {
		return "", false
	}
	c := callerOf(r)
	switch {
	case c.Admin:
		return q, true
	case q != "" && q != c.Tenant:
		refuseTenant(w, c, q)
		return "", false
	}
	return c.Tenant, true
}

// ownerTenant is the tenant a request creates for: a tenant's key's own,
// or an admin's ?tenant=, else the admin key's own. A ?tenant= that a
// tenant's key may not name is answered 400.
func ownerTenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	t, ok := readScope(w, r)
	if t == "" && ok {
		t = callerOf(r).Tenant
	}
	return t, ok
}

// jobRoute guards a route naming a job ({id}): a job (or a submission not
// recorded yet) that the request may not read is answered as a missing
// one, from the same words (store.TenantHasJob), whichever it is. A signed
// URL (signed.go) may read its own job's preview and video.
func (g *Gateway) jobRoute(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if c := callerOf(r); c.Job != "" {
			if c.Job != id { // auth checks the signature for this id; never reached
				writeError(w, http.StatusForbidden, "permission_denied", "the signed URL is not for this job")
				return
			}
			h(w, r)
			return
		}
		tenant, ok := readScope(w, r)
		if !ok {
			return
		}
		if ident.Valid(id) { // others name no job: the route says why
			if err := g.store.TenantHasJob(r.Context(), tenant, id); err != nil {
				fail(w, err)
				return
			}
		}
		h(w, r)
	}
}

// noBatch is the error of a missing batch, as store.GetBatch words it.
func noBatch(id string) error { return fmt.Errorf("store: batch %s: %w", id, store.ErrNotFound) }
