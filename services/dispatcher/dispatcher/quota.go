package dispatcher

import "fmt"

// Quota is the dispatcher's share of the tenants' quotas: the one enforced
// where segments are admitted. Embed it (anonymously) in a Config so that
// its variable is SPOOL_DISPATCHER_QUOTA_*. A tenant's override in Postgres
// (PUT /tenants/{tenant}/quota, spoolctl quota set) replaces the default.
type Quota struct {
	RunningSegments int `envconfig:"DISPATCHER_QUOTA_RUNNING_SEGMENTS" default:"0" desc:"most segments of one tenant being generated at once, in every pool (queued for a worker or running, until the tail is handed off); its further segments wait in Postgres, admitted as its running ones finish, while other tenants' go ahead; 0: unlimited; a tenant's quota (PUT /tenants/{tenant}/quota) overrides it"`
}

func (q Quota) validate() error {
	if q.RunningSegments < 0 {
		return fmt.Errorf("dispatcher: SPOOL_DISPATCHER_QUOTA_RUNNING_SEGMENTS %d: want ≥ 0 (0: unlimited)", q.RunningSegments)
	}
	return nil
}
