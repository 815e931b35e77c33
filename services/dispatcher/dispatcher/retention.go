package dispatcher

import (
	"fmt"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/store"
)

// Retention is how long objects are kept, and how the janitor that deletes
// them sweeps. Embed it (anonymously) in a Config so that its variables
// are SPOOL_RETENTION_*.
type Retention struct {
	Jobs     time.Duration `envconfig:"RETENTION_JOBS" default:"168h" desc:"a finished job's objects (video, preview, segments) are deleted this long after it finished; its row and lineage stay; 0 keeps them for ever"`
	Uploads  time.Duration `envconfig:"RETENTION_UPLOADS" default:"72h" desc:"an upload no unfinished job refers to is deleted this long after its last use (a pending one when its presigned PUT lapses); 0 keeps them for ever"`
	Tenants  string        `envconfig:"RETENTION_TENANTS" desc:"per-tenant overrides of the two above, tenant=jobs:<duration>,uploads:<duration>;tenant=..., e.g. acme=jobs:720h,uploads:24h;beta=jobs:1h"`
	Interval time.Duration `envconfig:"RETENTION_INTERVAL" default:"10m" desc:"how often the janitor looks for expired objects; 0 turns it off"`
	Lease    time.Duration `envconfig:"RETENTION_LEASE" default:"5m" desc:"how long a janitor holds the jobs and uploads it deletes; one that dies mid-sweep leaves them to another after this"`
	Batch    int           `envconfig:"RETENTION_BATCH" default:"100" desc:"jobs or uploads a janitor claims at once"`
}

// Policy is a Retention's TTLs, per tenant.
type Policy struct {
	Jobs, Uploads store.TTLs
}

// Policy checks r and parses its tenant overrides. Every error names the
// variable, and the tenant and field at fault.
func (r Retention) Policy() (Policy, error) {
	switch {
	case r.Jobs < 0:
		return Policy{}, fmt.Errorf("SPOOL_RETENTION_JOBS %v: want ≥ 0 (0 keeps for ever)", r.Jobs)
	case r.Uploads < 0:
		return Policy{}, fmt.Errorf("SPOOL_RETENTION_UPLOADS %v: want ≥ 0 (0 keeps for ever)", r.Uploads)
	case r.Interval < 0:
		return Policy{}, fmt.Errorf("SPOOL_RETENTION_INTERVAL %v: want ≥ 0 (0 turns the janitor off)", r.Interval)
	case r.Interval > 0 && r.Lease <= 0:
		return Policy{}, fmt.Errorf("SPOOL_RETENTION_LEASE %v: want > 0", r.Lease)
	case r.Interval > 0 && r.Batch < 1:
		return Policy{}, fmt.Errorf("SPOOL_RETENTION_BATCH %d: want ≥ 1", r.Batch)
	}
	p := Policy{Jobs: store.TTLs{Default: r.Jobs, Tenants: map[string]time.Duration{}},
		Uploads: store.TTLs{Default: r.Uploads, Tenants: map[string]time.Duration{}}}
	if strings.TrimSpace(r.Tenants) == "" {
		return p, nil
	}
	for n, entry := range strings.Split(r.Tenants, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return Policy{}, fmt.Errorf("SPOOL_RETENTION_TENANTS: entry %d is empty: want tenant=jobs:<duration>,uploads:<duration>, entries separated by ';'", n+1)
		}
		tenant, fields, ok := strings.Cut(entry, "=")
		tenant = strings.TrimSpace(tenant)
		if !ok {
			return Policy{}, fmt.Errorf("SPOOL_RETENTION_TENANTS: %q: want tenant=jobs:<duration>,uploads:<duration>", entry)
		}
		if !ident.Valid(tenant) {
			return Policy{}, fmt.Errorf("SPOOL_RETENTION_TENANTS: tenant %q: want %s", tenant, ident.Rule)
		}
		if _, dup := p.Jobs.Tenants[tenant]; dup {
			return Policy{}, fmt.Errorf("SPOOL_RETENTION_TENANTS: tenant %q is given twice", tenant)
		}
		jobs, uploads, err := parseTenantTTLs(tenant, fields, r)
		if err != nil {
			return Policy{}, err
		}
		p.Jobs.Tenants[tenant], p.Uploads.Tenants[tenant] = jobs, uploads
	}
	return p, nil
}

// parseTenantTTLs parses "jobs:<duration>,uploads:<duration>" (either, or
// both, in any order) of tenant; what it leaves out keeps r's default.
func parseTenantTTLs(tenant, fields string, r Retention) (jobs, uploads time.Duration, err error) {
	jobs, uploads = r.Jobs, r.Uploads
	seen := map[string]bool{}
	for _, f := range strings.Split(fields, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(f), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return 0, 0, fmt.Errorf("SPOOL_RETENTION_TENANTS: tenant %q: %q: want jobs:<duration> or uploads:<duration>", tenant, strings.TrimSpace(f))
		}
		if name != "jobs" && name != "uploads" {
			return 0, 0, fmt.Errorf("SPOOL_RETENTION_TENANTS: tenant %q: unknown field %q: want jobs or uploads", tenant, name)
		}
		if seen[name] {
			return 0, 0, fmt.Errorf("SPOOL_RETENTION_TENANTS: tenant %q: %s is given twice", tenant, name)
		}
		seen[name] = true
		d, err := time.ParseDuration(strings.TrimSpace(value))
		if err != nil || d < 0 {
			return 0, 0, fmt.Errorf("SPOOL_RETENTION_TENANTS: tenant %q: %s %q: want a duration ≥ 0 such as 24h or 90m (0 keeps for ever)",
				tenant, name, strings.TrimSpace(value))
		}
		if name == "jobs" {
			jobs = d
		} else {
			uploads = d
		}
	}
	return jobs, uploads, nil
}
