// Package dispatcher turns submitted jobs into segment tasks and drives each
// job to its end: it validates and plans a job, writes it with its segments
// and outbox rows in one transaction, publishes the outbox, releases chain
// segments as tails become ready, commits results, retries failures with
// backoff, cancels, and reconciles what JetStream lost against Postgres.
package dispatcher

import (
	"fmt"
	"time"

	"github.com/spoolvideo/spool/libs/config"
)

// Config is the dispatcher's configuration, from SPOOL_* variables.
type Config struct {
	config.Service
	config.Catalog
	Retention
	Quota
	NATS     config.NATS     `envconfig:"NATS"`
	Postgres config.Postgres `envconfig:"PG"`
	S3       config.S3       `envconfig:"S3"`

	Pools           string        `envconfig:"DISPATCHER_POOLS" default:"default:ref,ref-talk,sim" desc:"the pools the dispatcher feeds and the models each serves, pool:model,model;pool:model (every worker of a pool must serve all its models); a job naming no pool goes to the first pool serving its model"`
	MaxAttempts     int           `envconfig:"DISPATCHER_MAX_ATTEMPTS" default:"3" desc:"attempts of a segment before its job fails"`
	RetryBackoff    time.Duration `envconfig:"DISPATCHER_RETRY_BACKOFF" default:"2s" desc:"delay before a retry; doubles with each attempt"`
	ReconcileEvery  time.Duration `envconfig:"DISPATCHER_RECONCILE_EVERY" default:"10s" desc:"how often the reconciler looks for lost segments"`
	RunningStale    time.Duration `envconfig:"DISPATCHER_RUNNING_STALE" default:"90s" desc:"a running segment no worker holds is re-published after this long without news"`
	QueuedStale     time.Duration `envconfig:"DISPATCHER_QUEUED_STALE" default:"5m" desc:"a queued segment no worker took is re-published after this long"`
	PoolWindow      int           `envconfig:"DISPATCHER_POOL_WINDOW" default:"32" desc:"segments a pool may have queued or running; the rest wait in Postgres and are admitted fairly"`
	LiveAhead       int           `envconfig:"DISPATCHER_LIVE_AHEAD" default:"3" desc:"segments planned ahead of the newest one for live jobs"`
	OutboxBatch     int           `envconfig:"DISPATCHER_OUTBOX_BATCH" default:"256" desc:"outbox rows published per transaction"`
	SubmitBatch     int           `envconfig:"DISPATCHER_SUBMIT_BATCH" default:"64" desc:"submissions fetched at once, and re-driven from Postgres at once"`
	RedriveAfter    time.Duration `envconfig:"DISPATCHER_REDRIVE_AFTER" default:"5s" desc:"a submission the gateway recorded in Postgres (answered 202) that no dispatcher has admitted this long after is admitted from Postgres: its NATS message was lost, or NATS lost its store"`
	IntakeParallel  int           `envconfig:"DISPATCHER_INTAKE_PARALLEL" default:"2" desc:"submissions with media whose intake (an audio track decoded and encoded, a video fitted and re-encoded: up to minutes) runs at once, each beside the submissions without media, which it never holds up"`
	Codec           string        `envconfig:"DISPATCHER_CODEC" default:"h264" desc:"codec with which intake re-encodes an input video that a job keeps (include_input): h264, or lossless for tests; must match the workers'"`
	SegmentDeadline time.Duration `envconfig:"DISPATCHER_SEGMENT_DEADLINE" default:"30m" desc:"time a worker has to finish a segment attempt"`
}

func (c Config) validate() error {
	switch {
	case c.MaxAttempts < 1:
		return fmt.Errorf("dispatcher: SPOOL_DISPATCHER_MAX_ATTEMPTS %d: want ≥ 1", c.MaxAttempts)
	case c.RetryBackoff < 0 || c.ReconcileEvery <= 0 || c.RunningStale <= 0 || c.QueuedStale <= 0:
		return fmt.Errorf("dispatcher: backoff, reconcile interval and stale bounds must be > 0")
	case c.LiveAhead < 1 || c.OutboxBatch < 1 || c.SubmitBatch < 1 || c.PoolWindow < 1:
		return fmt.Errorf("dispatcher: pool window, live-ahead, outbox batch and submit batch must be ≥ 1")
	case c.RedriveAfter < 0:
		return fmt.Errorf("dispatcher: SPOOL_DISPATCHER_REDRIVE_AFTER %v: want > 0 (0 in code: %v)", c.RedriveAfter, defaultRedriveAfter)
	case c.IntakeParallel < 0:
		return fmt.Errorf("dispatcher: SPOOL_DISPATCHER_INTAKE_PARALLEL %d: want ≥ 1 (0 in code: 2)", c.IntakeParallel)
	}
	return c.Quota.validate()
}
