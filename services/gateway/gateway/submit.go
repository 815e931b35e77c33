package gateway

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/jobspec"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// decodeSpec decodes one JSON JobSpec (protojson), as POST /generate and
// POST /batches take it. Its errors wrap bus.ErrMalformedJob.
func decodeSpec(body []byte) (*spoolv1.JobSpec, error) {
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentJSON)
	return bus.DecodeJobSpec(body, h)
}

// submit validates spec as the dispatcher will, its uploads included, and
// submits it, and returns the job's id. A spec whose id names a job with
// the same spec is a retry: its id comes back and nothing is submitted
// again. The errors are those fail answers: a *jobspec.FieldError,
// errOtherSpec, or the store's or the bus's.
func (g *Gateway) submit(ctx context.Context, spec *spoolv1.JobSpec) (string, error) {
	job, err := jobspec.Validate(spec, g.catalog)
	if err != nil {
		return "", err
	}
	if _, err := jobspec.CheckInputs(ctx, &job, g.store); err != nil {
		return "", err
	}
	again, err := g.resubmitted(ctx, spec)
	switch {
	case err != nil:
		return "", err
	case again:
		return spec.GetId(), nil
	}
	id, _, err := g.bus.SubmitJob(ctx, spec)
	return id, err
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
