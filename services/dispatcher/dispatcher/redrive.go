package dispatcher

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// claimLease is how long a dispatcher's claim on a submission it admits
// lasts without renewal; an intake renews it every five seconds. A
// dispatcher that dies mid-admission leaves a claim that lapses after it,
// and another admits the submission.
const claimLease = time.Minute

// defaultRedriveAfter is SPOOL_DISPATCHER_REDRIVE_AFTER's default, and
// what a Config built in code that leaves it zero gets.
const defaultRedriveAfter = 5 * time.Second

// owner is a name for this dispatcher in submission claims: the host, the
// process and a random part, so that two dispatchers of one process (in
// tests) are told apart.
func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), strconv.FormatUint(uint64(rand.Uint32()), 36))
}

// redriveLoop admits the submissions the gateway recorded in Postgres that
// no dispatcher admitted within RedriveAfter of their 202: their message
// was lost (NATS was down, or lost its store) or no dispatcher ran. It
// looks every half RedriveAfter (at most every second).
func (d *Dispatcher) redriveLoop(ctx context.Context) error {
	t := time.NewTicker(min(max(d.cfg.RedriveAfter/2, 10*time.Millisecond), time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := d.Redrive(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("re-drive submissions", "err", err)
		}
	}
}

// Redrive runs one pass of the re-drive: it claims up to SubmitBatch
// waiting submissions (FOR UPDATE SKIP LOCKED, with a lease, so that two
// dispatchers never admit one at once) and admits each as a message of
// spool.jobs.submit is admitted (validation, intake of uploads, rejection
// with its field), and says how many it took on. One with media runs
// beside, on an intake slot (none free: it waits for the next pass). One
// whose admission fails for a reason that may pass is given back, for the
// next pass.
func (d *Dispatcher) Redrive(ctx context.Context) (int, error) {
	subs, err := d.store.ClaimSubmissions(ctx, d.owner, d.cfg.RedriveAfter, claimLease, d.cfg.SubmitBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sub := range subs {
		a := d.redriven(ctx, sub)
		actx := bus.ContextFromTraceparent(ctx, sub.Traceparent)
		release := func() { _ = d.store.ReleaseSubmission(context.WithoutCancel(ctx), sub.JobID, d.owner) }
		d.log.Info("submission re-driven from Postgres", "job", sub.JobID, "accepted_at", sub.AcceptedAt)
		if !hasMedia(a.spec) {
			if err := d.admitSubmission(actx, a); err != nil {
				d.log.Warn("re-driven submission; it is tried again", "job", sub.JobID, "err", err)
				release()
				continue
			}
			n++
			continue
		}
		select {
		case d.intakes <- struct{}{}:
		default:
			release()
			continue
		}
		d.intaking.Add(1)
		go func() {
			defer func() { <-d.intakes; d.intaking.Done() }()
			if err := d.admitSubmission(actx, a); err != nil {
				d.log.Warn("re-driven submission; it is tried again", "job", sub.JobID, "err", err)
				release()
			}
		}()
		n++
	}
	return n, nil
}

// redriven is the arrival of a submission re-driven from Postgres; its
// progress renews the claim.
func (d *Dispatcher) redriven(ctx context.Context, sub store.Submission) arrival {
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentProtobuf)
	spec, err := bus.DecodeJobSpec(sub.Spec, h)
	return arrival{id: sub.JobID, via: "postgres", data: sub.Spec, spec: spec, decodeErr: err, progress: func() {
		_ = d.store.RenewSubmission(ctx, sub.JobID, d.owner, claimLease)
	}}
}

// hasMedia reports whether spec names an upload, whose intake may take
// minutes.
func hasMedia(spec *spoolv1.JobSpec) bool {
	return spec.GetImage() != "" || spec.GetVideo() != "" || spec.GetAudio() != "" || spec.GetReference() != ""
}
