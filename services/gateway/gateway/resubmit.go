package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// errOtherSpec is a submission whose id names a job that exists with
// another spec.
var errOtherSpec = errors.New("gateway: the id names a job with another spec")

// resubmitted reports whether spec names (by its id) a job that already
// exists with the same spec: the submission is then a retry, answered as
// the first was, and nothing is submitted again. A job of that id with
// another spec is errOtherSpec (wrapped, with the id), since the job would
// not be what was asked for. A spec without an id is never a resubmission.
func (g *Gateway) resubmitted(ctx context.Context, spec *spoolv1.JobSpec) (bool, error) {
	id := spec.GetId()
	if id == "" {
		return false, nil
	}
	j, err := g.store.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentJSON)
	was, err := bus.DecodeJobSpec(j.Spec, h)
	if err != nil {
		return false, fmt.Errorf("gateway: job %s's stored spec: %w", id, err)
	}
	if !proto.Equal(was, spec) {
		return false, fmt.Errorf("%w: job %s exists (%s) with another spec; submit the same spec to retry, or choose another id", errOtherSpec, id, j.State)
	}
	return true, nil
}
