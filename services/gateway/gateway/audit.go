package gateway

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/store"
)

// The audit log's actions that the gateway records.
const (
	actionJobSubmit   = "job.submit"
	actionBatchSubmit = "batch.submit"
	actionJobCancel   = "job.cancel"
	actionJobDelete   = "job.delete"
	actionKeyCreate   = "key.create"
	actionKeyRevoke   = "key.revoke"
	actionQuotaSet    = "quota.set"
)

// auditAction is the form of an action (the audit_log's CHECK).
var auditAction = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// audit records that the request's key did action to target for tenant.
// The action is done already: a failure to record it is logged, not
// answered.
func (g *Gateway) audit(ctx context.Context, r *http.Request, tenant, action, target string, detail map[string]any) {
	e := store.AuditEntry{Tenant: tenant, KeyID: callerOf(r).KeyID, Action: action, Target: target, Detail: detail}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := g.store.Audit(ctx, e); err != nil {
		g.log.Error("an audit entry is not recorded", "action", action, "target", target, "tenant", tenant, "key", e.KeyID, "error", err)
	}
}

// auditView is an entry of the audit log as the API shows it.
type auditView struct {
	ID     int64          `json:"id"`
	Time   time.Time      `json:"time"`
	Tenant string         `json:"tenant"`
	KeyID  string         `json:"key_id,omitempty"`
	Action string         `json:"action"`
	Target string         `json:"target"`
	Detail map[string]any `json:"detail,omitempty"`
}

// listAudit is GET /audit: the audit log, newest first; a tenant's key
// reads its tenant's entries, an admin's every one (?tenant= filters).
// ?action=, ?target=, ?limit=1..1000 (100), ?before=<the previous page's
// next>.
func (g *Gateway) listAudit(w http.ResponseWriter, r *http.Request) {
	tenant, ok := readScope(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := store.ListAuditParams{Tenant: tenant, Action: q.Get("action"), Target: q.Get("target")}
	switch {
	case p.Action != "" && !auditAction.MatchString(p.Action):
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "action",
			Message: fmt.Sprintf("action %q: want a lowercase word with dots, e.g. job.submit or key.revoke", p.Action)})
		return
	case p.Target != "" && !ident.Valid(p.Target):
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "target",
			Message: fmt.Sprintf("target %q: want a job, batch, upload or key id, or a tenant (%s)", p.Target, ident.Rule)})
		return
	}
	for _, f := range []struct {
		name     string
		min, max int64
		to       func(int64)
	}{
		{"limit", 1, 1000, func(n int64) { p.Limit = int(n) }},
		{"before", 1, 1<<63 - 1, func(n int64) { p.Before = n }},
	} {
		s := q.Get(f.name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < f.min || n > f.max {
			writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: f.name,
				Message: fmt.Sprintf("%s %q: want %d..%d", f.name, s, f.min, f.max)})
			return
		}
		f.to(n)
	}
	entries, next, err := g.store.ListAudit(r.Context(), p)
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Entries []auditView `json:"entries"`
		Next    string      `json:"next,omitempty"`
	}{Entries: make([]auditView, len(entries))}
	for i, e := range entries {
		out.Entries[i] = auditView(e)
	}
	if next != 0 {
		out.Next = strconv.FormatInt(next, 10)
	}
	writeJSON(w, http.StatusOK, out)
}
