package loadbench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// waitDone returns when every job of the run has ended, as its events on
// spool.events.* say (read on core NATS, which costs the system nothing),
// or as Postgres says: it is asked every few seconds, in case an event was
// missed. A job that ends other than succeeded fails the run at once.
func waitDone(ctx context.Context, b *bus.Bus, st *store.Store, jobs []job, limit time.Duration) error {
	ch := make(chan *nats.Msg, 64<<10)
	sub, err := b.Conn().ChanSubscribe(bus.SubjectAllEvents, ch)
	if err != nil {
		return fmt.Errorf("loadbench: subscribe to events: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	mine := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		mine[j.id] = true
	}
	done := map[string]bool{}
	check := time.NewTicker(5 * time.Second)
	defer check.Stop()
	deadline := time.After(limit)
	for len(done) < len(jobs) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("loadbench: %d of %d jobs not done in %v", len(jobs)-len(done), len(jobs), limit)
		case m := <-ch:
			e, err := bus.DecodeEvent(m.Data)
			if err != nil || !mine[e.GetJobId()] {
				continue
			}
			switch e.GetState() {
			case spoolv1.JobState_JOB_STATE_SUCCEEDED:
				done[e.GetJobId()] = true
			case spoolv1.JobState_JOB_STATE_FAILED, spoolv1.JobState_JOB_STATE_CANCELLED, spoolv1.JobState_JOB_STATE_REJECTED:
				return fmt.Errorf("loadbench: job %s ended %s: %s %s", e.GetJobId(), e.GetState(), e.GetErrorCode(), e.GetMessage())
			}
		case <-check.C:
			ok, err := succeededIn(ctx, st, mine)
			if err != nil {
				return err
			}
			for id := range ok {
				done[id] = true
			}
		}
	}
	return nil
}

// succeededIn lists which of the jobs in mine have succeeded, per
// Postgres.
func succeededIn(ctx context.Context, st *store.Store, mine map[string]bool) (map[string]bool, error) {
	ok := map[string]bool{}
	p := store.ListJobsParams{State: store.JobSucceeded, Limit: 1000}
	for {
		page, next, err := st.ListJobs(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, j := range page {
			if mine[j.ID] {
				ok[j.ID] = true
			}
		}
		if next == nil {
			return ok, nil
		}
		p.After = next
	}
}

// jobRecord and segmentRecord are what the fairness figures are made of:
// when each job was taken in (recorded in Postgres) and ended, and when
// each segment was admitted to its pool's queue and started on a worker
// (its first attempt's).
type jobRecord struct {
	tenant            string
	created, finished time.Time
}

type segmentRecord struct {
	tenant          string
	queued, started time.Time
}

// verify checks in Postgres that every job succeeded with a final video of
// the planned frame count, whose object is in MinIO, and collects the
// records of the fairness figures and the attempts that were retried,
// with why.
func verify(ctx context.Context, st *store.Store, bl *blob.Store, o Options, jobs []job) ([]jobRecord, []segmentRecord, []string, error) {
	var (
		jrs     []jobRecord
		srs     []segmentRecord
		retries []string
	)
	for _, jb := range jobs {
		j, err := st.GetJob(ctx, jb.id)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("loadbench: %w", err)
		}
		switch {
		case j.State != store.JobSucceeded || j.FinishedAt == nil:
			return nil, nil, nil, fmt.Errorf("loadbench: job %s is %s (%s)", j.ID, j.State, j.ErrorMessage)
		case j.Tenant != jb.tenant:
			return nil, nil, nil, fmt.Errorf("loadbench: job %s has tenant %q, want %q", j.ID, j.Tenant, jb.tenant)
		case j.FinalKey == "" || j.FinalFrames != o.frames():
			return nil, nil, nil, fmt.Errorf("loadbench: job %s: final %q of %d frames, want %d", j.ID, j.FinalKey, j.FinalFrames, o.frames())
		}
		if info, err := bl.Stat(ctx, blob.Key(j.FinalKey)); err != nil || info.Size != j.FinalBytes {
			return nil, nil, nil, fmt.Errorf("loadbench: job %s: final video %s (%d bytes recorded): %v", j.ID, j.FinalKey, j.FinalBytes, err)
		}
		jrs = append(jrs, jobRecord{tenant: j.Tenant, created: j.CreatedAt, finished: *j.FinishedAt})
		segs, err := st.ListSegments(ctx, j.ID)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("loadbench: %w", err)
		}
		if len(segs) != o.Segments {
			return nil, nil, nil, fmt.Errorf("loadbench: job %s has %d segments, want %d", j.ID, len(segs), o.Segments)
		}
		for _, s := range segs {
			as, err := st.ListAttempts(ctx, j.ID, s.Index)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("loadbench: %w", err)
			}
			if len(as) == 0 || as[0].StartedAt == nil {
				return nil, nil, nil, fmt.Errorf("loadbench: job %s segment %d: no started attempt", j.ID, s.Index)
			}
			for _, a := range as[:len(as)-1] { // a retry says why
				retries = append(retries, fmt.Sprintf("%s/%d attempt %d %s (%s): %s", j.ID, s.Index, a.Attempt, a.Outcome, a.ErrorClass, a.ErrorMsg))
			}
			srs = append(srs, segmentRecord{tenant: j.Tenant, queued: as[0].QueuedAt, started: *as[0].StartedAt})
		}
	}
	return jrs, srs, retries, nil
}

// drained waits, up to limit, until nothing is left to do: no message in
// the work queues SPOOL_JOBS and SPOOL_SEGMENTS, none pending or
// unacknowledged on any consumer, and no unsent outbox row.
func drained(ctx context.Context, b *bus.Bus, st *store.Store, limit time.Duration) error {
	workers, err := bus.PoolConsumer(pool)
	if err != nil {
		return err
	}
	consumers := []struct{ stream, name string }{
		{bus.StreamJobs, bus.ConsumerDispatcher}, {bus.StreamSegments, workers},
		{bus.StreamResults, bus.ConsumerDispatcher}, {bus.StreamResults, bus.ConsumerStitcher},
	}
	deadline := time.Now().Add(limit)
	for {
		err := func() error {
			for _, name := range []string{bus.StreamJobs, bus.StreamSegments} {
				s, err := b.JetStream().Stream(ctx, name)
				if err != nil {
					return err
				}
				info, err := s.Info(ctx)
				if err != nil {
					return err
				}
				if info.State.Msgs != 0 {
					return fmt.Errorf("%s holds %d messages", name, info.State.Msgs)
				}
			}
			for _, c := range consumers {
				cons, err := b.JetStream().Consumer(ctx, c.stream, c.name)
				if err != nil {
					return err
				}
				info, err := cons.Info(ctx)
				if err != nil {
					return err
				}
				if info.NumPending != 0 || info.NumAckPending != 0 {
					return fmt.Errorf("consumer %s of %s: %d pending, %d unacknowledged", c.name, c.stream, info.NumPending, info.NumAckPending)
				}
			}
			n, err := st.UnsentOutbox(ctx)
			if err == nil && n != 0 {
				err = fmt.Errorf("%d outbox rows unsent", n)
			}
			return err
		}()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || errors.Is(err, context.Canceled) {
			return fmt.Errorf("loadbench: work left after the run: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
