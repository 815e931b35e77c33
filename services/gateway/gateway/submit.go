package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/libs/telemetry"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// publishWait bounds the publish of a recorded submission to NATS: the
// submission is in Postgres already, and a dispatcher re-drives it from
// there when its message never arrives.
const publishWait = 2 * time.Second

// decodeSpec decodes one JSON JobSpec (protojson), as POST /generate and
// POST /batches take it. Its errors wrap bus.ErrMalformedJob.
func decodeSpec(body []byte) (*spoolv1.JobSpec, error) {
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentJSON)
	return bus.DecodeJobSpec(body, h)
}

// submit validates spec as the dispatcher will, its uploads included,
// records the submission in Postgres, then publishes it on
// spool.jobs.submit, and returns the job's id and whether the publish went
// through. Once it returns without error the job is Postgres's: a
// dispatcher admits it from the stream, or re-drives it from Postgres when
// the message is lost (NATS down, or its store lost). A spec without an id
// gets a new one. A spec whose id names a job or a submission with the same
// spec is a retry: its id comes back and nothing is submitted again. The
// errors are those fail answers: a *jobspec.FieldError, errOtherSpec, a
// *quotaError (429: a quota of the job's tenant refused it, and nothing was
// recorded), or the store's (503: nothing was recorded).
func (g *Gateway) submit(ctx context.Context, spec *spoolv1.JobSpec) (id string, published bool, err error) {
	job, err := jobspec.Validate(spec, g.catalog)
	if err != nil {
		return "", false, err
	}
	if _, err := jobspec.CheckInputs(ctx, &job, g.store); err != nil {
		return "", false, err
	}
	again, err := g.resubmitted(ctx, spec)
	switch {
	case err != nil:
		return "", false, err
	case again:
		return spec.GetId(), false, nil
	}
	if spec.GetId() == "" {
		spec.Id = newID("g")
	}
	ctx, span := bus.StartSubmit(ctx)
	defer span.End()
	span.SetAttributes(telemetry.AttrJob.String(spec.GetId()))
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(spec)
	if err != nil {
		return "", false, fmt.Errorf("gateway: encode spec: %w", err)
	}
	was, created, err := g.admit(ctx, job.Tenant, store.Submission{JobID: spec.GetId(), Spec: raw, Traceparent: bus.Traceparent(ctx)},
		requestedSeconds(job))
	if err != nil {
		span.RecordError(err)
		return "", false, err
	}
	if !created {
		return spec.GetId(), false, sameSubmission(was, spec)
	}
	return spec.GetId(), g.publish(ctx, spec), nil
}

// sameSubmission is nil when the recorded submission was holds spec (a
// retry), else errOtherSpec naming the job.
func sameSubmission(was store.Submission, spec *spoolv1.JobSpec) error {
	var prior spoolv1.JobSpec
	if err := proto.Unmarshal(was.Spec, &prior); err != nil {
		return fmt.Errorf("gateway: submission %s's stored spec: %w", was.JobID, err)
	}
	if !proto.Equal(&prior, spec) {
		return fmt.Errorf("%w: job %s was submitted at %s with another spec; submit the same spec to retry, or choose another id",
			errOtherSpec, was.JobID, was.AcceptedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// publish sends a recorded submission to the dispatchers, waiting
// publishWait at most, and reports whether it went through. A failure is
// no error: the submission is in Postgres, and a dispatcher re-drives it.
func (g *Gateway) publish(ctx context.Context, spec *spoolv1.JobSpec) bool {
	if st := g.bus.Conn().Status(); st != nats.CONNECTED {
		g.log.Warn("submission recorded, not published (NATS "+st.String()+"): a dispatcher re-drives it from Postgres", "job", spec.GetId())
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	if _, err := g.bus.PublishSubmission(ctx, spec); err != nil {
		g.log.Warn("submission recorded, not published: a dispatcher re-drives it from Postgres", "job", spec.GetId(), "err", err)
		return false
	}
	return true
}

// awaitRecorded waits, two seconds at most, for the dispatcher to record
// the jobs ids, so that a read after the submission finds them (read your
// writes).
func (g *Gateway) awaitRecorded(ctx context.Context, ids ...string) {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(10 * time.Millisecond) {
		if n, err := g.store.CountJobs(ctx, ids); err == nil && n == len(ids) {
			return
		}
	}
}

// stateSubmitted is the state the API shows of a job the gateway accepted
// and no dispatcher has recorded yet.
const stateSubmitted = "submitted"

// submittedJob is the view of job id while it is a submission no
// dispatcher has recorded (state submitted), or of the job once one has.
// ErrNotFound when the gateway recorded no such submission.
func (g *Gateway) submittedJob(ctx context.Context, id string) (jobView, store.Job, error) {
	sub, err := g.store.GetSubmission(ctx, id)
	if err != nil {
		return jobView{}, store.Job{}, err
	}
	if sub.AdmittedAt != nil { // recorded since the caller looked
		j, err := g.store.GetJob(ctx, id)
		if err != nil {
			return jobView{}, store.Job{}, err
		}
		return view(j), j, nil
	}
	v := jobView{ID: id, State: stateSubmitted, Tenant: sub.Tenant, CreatedAt: sub.AcceptedAt}
	var spec spoolv1.JobSpec
	if proto.Unmarshal(sub.Spec, &spec) == nil {
		if j, err := jobspec.Validate(&spec, g.catalog); err == nil {
			v.Model, v.Pool, v.FPS, v.Width, v.Height, v.Live = j.Model, j.Pool, j.FPS, j.Width, j.Height, j.Live
		}
	}
	return v, store.Job{ID: id}, nil
}

// jobOrSubmission is job id as the API shows it: recorded by a dispatcher
// (the job, and true), or still a submission (its view, false).
func (g *Gateway) jobOrSubmission(ctx context.Context, id string) (jobView, store.Job, bool, error) {
	j, err := g.store.GetJob(ctx, id)
	if err == nil {
		return view(j), j, true, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return jobView{}, store.Job{}, false, err
	}
	v, j, serr := g.submittedJob(ctx, id)
	if errors.Is(serr, store.ErrNotFound) {
		return jobView{}, store.Job{}, false, err // the job's own not-found
	}
	if serr != nil {
		return jobView{}, store.Job{}, false, serr
	}
	return v, j, v.State != stateSubmitted, nil
}
