package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
)

// Janitor deletes the objects of finished jobs and of unused uploads once
// their tenant's retention has passed. Several may run at once (one per
// dispatcher replica): each claims its work in Postgres with a lease, so
// that two never take the same job or upload, and one that dies mid-sweep
// leaves its claims to lapse and be taken by another, which deletes again
// (deleting twice is harmless). Objects are deleted first, and the row is
// marked deleted after.
type Janitor struct {
	cfg    Retention
	policy Policy
	owner  string
	store  *store.Store
	blob   *blob.Store
	log    *slog.Logger
}

// Swept counts what one sweep deleted.
type Swept struct {
	Jobs    int // jobs whose objects were deleted
	Uploads int // uploads whose objects were deleted
	Objects int // objects removed
	Failed  int // jobs or uploads left to a later sweep after an error
}

// NewJanitor checks cfg and returns a janitor over s and bl.
func NewJanitor(cfg Retention, s *store.Store, bl *blob.Store, log *slog.Logger) (*Janitor, error) {
	p, err := cfg.Policy()
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	if s == nil || bl == nil {
		return nil, errors.New("dispatcher: the janitor needs Postgres and the object store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Janitor{cfg: cfg, policy: p, owner: fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:])),
		store: s, blob: bl, log: log}, nil
}

// Run sweeps every cfg.Interval until ctx ends; a sweep that fails is
// logged and tried again at the next.
func (j *Janitor) Run(ctx context.Context) error {
	if j.cfg.Interval <= 0 {
		return nil
	}
	t := time.NewTicker(j.cfg.Interval)
	defer t.Stop()
	for {
		if sw, err := j.Sweep(ctx); err != nil && ctx.Err() == nil {
			j.log.Warn("retention sweep", "err", err)
		} else if sw.Jobs+sw.Uploads+sw.Failed > 0 {
			j.log.Info("retention sweep", "jobs", sw.Jobs, "uploads", sw.Uploads, "objects", sw.Objects, "failed", sw.Failed)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep deletes what has expired now, a batch of claims at a time, until
// nothing is left to claim. A job or upload whose deletion fails keeps its
// claim until the lease lapses, and is counted in Failed.
func (j *Janitor) Sweep(ctx context.Context) (Swept, error) {
	var sw Swept
	for ctx.Err() == nil {
		claimed, err := j.store.ClaimExpiredJobs(ctx, j.owner, j.policy.Jobs, j.cfg.Lease, j.cfg.Batch)
		if err != nil {
			return sw, err
		}
		if len(claimed) == 0 {
			break
		}
		for _, c := range claimed {
			if n, err := j.deleteJob(ctx, c); err != nil {
				sw.Failed++
				j.log.Warn("retention: job", "job", c.ID, "tenant", c.Tenant, "err", err)
			} else {
				sw.Jobs, sw.Objects = sw.Jobs+1, sw.Objects+n
			}
		}
	}
	for ctx.Err() == nil {
		claimed, err := j.store.ClaimExpiredUploads(ctx, j.owner, j.policy.Uploads, j.cfg.Lease, j.cfg.Batch)
		if err != nil || len(claimed) == 0 {
			return sw, err
		}
		for _, c := range claimed {
			if n, err := j.deleteUpload(ctx, c); err != nil {
				sw.Failed++
				j.log.Warn("retention: upload", "upload", c.ID, "tenant", c.Tenant, "err", err)
			} else {
				sw.Uploads, sw.Objects = sw.Uploads+1, sw.Objects+n
			}
		}
	}
	return sw, ctx.Err()
}

func (j *Janitor) deleteJob(ctx context.Context, c store.Expired) (int, error) {
	prefix, err := blob.JobPrefix(c.ID)
	if err != nil {
		return 0, err
	}
	final, _ := blob.Final(c.ID)
	n, err := j.blob.DeletePrefix(ctx, prefix, final)
	if err != nil {
		return n, err
	}
	_, err = j.store.MarkJobDeleted(ctx, c.ID)
	return n, err
}

func (j *Janitor) deleteUpload(ctx context.Context, c store.Expired) (int, error) {
	prefix, err := blob.UploadPrefix(c.Tenant, c.ID)
	if err != nil {
		return 0, err
	}
	source, _ := blob.UploadSource(c.Tenant, c.ID)
	n, err := j.blob.DeletePrefix(ctx, prefix, source)
	if err != nil {
		return n, err
	}
	return n, j.store.MarkUploadDeleted(ctx, c.ID)
}
