package dispatcher

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/plan"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/libs/telemetry"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

var tracer = otel.Tracer("github.com/spoolvideo/spool/services/dispatcher")

// submission handles one submitted job. One with media inputs runs on a
// goroutine of its own, at most IntakeParallel at once, because its intake
// may take minutes (an hour of audio is decoded and encoded once): the
// submissions fetched with it and after it go on meanwhile. When every
// intake slot is taken it goes back to the stream for a little while
// (submissions are redelivered without limit). Others run here.
func (d *Dispatcher) submission(ctx context.Context, m jetstream.Msg) error {
	spec, err := bus.DecodeJobSpec(m.Data(), m.Headers())
	if err != nil || !hasMedia(spec) {
		return d.onSubmission(ctx, m)
	}
	select {
	case d.intakes <- struct{}{}:
	default:
		return m.NakWithDelay(2 * time.Second)
	}
	d.intaking.Add(1)
	go func() {
		defer func() { <-d.intakes; d.intaking.Done() }()
		if err := d.onSubmission(ctx, m); err != nil {
			d.log.Error("handling a submission; it will be redelivered", "err", err)
			_ = m.NakWithDelay(time.Second)
		}
	}()
	return nil
}

// onSubmission admits one message of spool.jobs.submit, then acks it. A
// submission the gateway recorded in Postgres is claimed there first, so
// that a dispatcher re-driving it at the same time (redrive.go) leaves it
// alone: one another dispatcher is admitting comes back later, one already
// admitted is acked at once.
func (d *Dispatcher) onSubmission(ctx context.Context, m jetstream.Msg) error {
	ctx = bus.ContextFromMsg(ctx, m)
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("submission metadata: %w", err)
	}
	spec, decodeErr := bus.DecodeJobSpec(m.Data(), m.Headers())
	id := bus.JobIDFromSubmission(spec, m.Headers().Get("Nats-Msg-Id"), meta.Sequence.Stream)
	if !ident.Valid(id) {
		id = bus.JobIDFromSubmission(&spoolv1.JobSpec{}, "", meta.Sequence.Stream)
	}
	claim, err := d.store.ClaimSubmission(ctx, id, d.owner, claimLease)
	switch {
	case err != nil:
		return err
	case claim == store.ClaimAdmitted:
		return m.Ack()
	case claim == store.ClaimBusy:
		return m.NakWithDelay(d.cfg.RedriveAfter)
	}
	a := arrival{id: id, via: "nats", data: m.Data(), spec: spec, decodeErr: decodeErr, progress: func() {
		_ = m.InProgress()
		if claim == store.ClaimTaken {
			_ = d.store.RenewSubmission(ctx, id, d.owner, claimLease)
		}
	}}
	if err := d.admitSubmission(ctx, a); err != nil {
		if claim == store.ClaimTaken {
			_ = d.store.ReleaseSubmission(context.WithoutCancel(ctx), id, d.owner)
		}
		return err
	}
	return m.Ack()
}

// arrival is a submission as it reaches the dispatcher: a message of
// spool.jobs.submit, or a submission the gateway recorded, re-driven from
// Postgres.
type arrival struct {
	id        string
	via       string           // nats, or postgres (re-driven)
	data      []byte           // the spec as sent, for the rejection of one that does not decode
	spec      *spoolv1.JobSpec // nil when it does not decode
	decodeErr error
	progress  func() // says the admission goes on (an intake of media takes minutes)
}

// admitSubmission validates, plans and records one submission, or records
// its rejection with the field and the reason. Recording is idempotent and
// marks the gateway's submission of the job admitted in the same
// transaction, so whichever way a submission arrives, and however often,
// its job is recorded once, the same way. An error is one that may pass
// (the store is down): the submission is tried again.
func (d *Dispatcher) admitSubmission(ctx context.Context, a arrival) error {
	ctx, span := tracer.Start(ctx, "dispatch.plan", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	id, spec := a.id, a.spec
	span.SetAttributes(telemetry.AttrJob.String(id))
	d.log.Debug("admitting a submission", "job", id, "via", a.via)
	var job jobspec.Job
	var in Inputs
	var err error
	if a.decodeErr == nil {
		job, err = jobspec.Validate(spec, d.catalog)
		if err == nil {
			in, err = d.mediaOf(ctx, a.progress, &job)
		}
	}
	switch {
	case a.decodeErr != nil:
		err = d.reject(ctx, id, a.data, nil, "invalid_argument", bus.MalformedField(a.decodeErr), a.decodeErr.Error())
	case err != nil:
		var fe *jobspec.FieldError
		if !errors.As(err, &fe) {
			return err
		}
		raw, _ := protojson.Marshal(spec)
		err = d.reject(ctx, id, raw, spec, fe.Code, fe.Field, fe.Error())
	default:
		err = d.accept(ctx, id, spec, job, in)
		var gone *store.UploadGoneError
		if errors.As(err, &gone) { // retention took the upload since intake
			raw, _ := protojson.Marshal(spec)
			err = d.reject(ctx, id, raw, spec, jobspec.CodeInvalidArgument, gone.Role,
				fmt.Sprintf("%s: %q is not allowed; allowed: an upload of tenant %s that has not expired (%v)", gone.Role, gone.UploadID, job.Tenant, gone))
		}
	}
	if err != nil {
		span.RecordError(err)
		return err
	}
	d.wake()
	return nil
}

// reject records job id as rejected, with the model and pool it asked for
// (asked: nil when the spec did not decode) where they are names at all.
// The message may quote what was sent (a decoder's "invalid value \xff"):
// it is made valid UTF-8 without a NUL, which both the event (a protobuf
// string) and Postgres (text) need, or the submission could never be
// rejected and would come back for ever.
func (d *Dispatcher) reject(ctx context.Context, id string, spec []byte, asked *spoolv1.JobSpec, code, field, msg string) error {
	if !jsonObject(spec) {
		spec, _ = protojson.Marshal(&spoolv1.JobSpec{})
	}
	msg = strings.ToValidUTF8(strings.ReplaceAll(msg, "\x00", "\uFFFD"), "\uFFFD")
	ev, err := eventMsg(ctx, id+".rejected", &spoolv1.JobEvent{JobId: id, State: spoolv1.JobState_JOB_STATE_REJECTED,
		Message: msg, ErrorCode: code, ErrorField: field})
	if err != nil {
		return err
	}
	model, pool := cmp.Or(asked.GetModel(), jobspec.DefaultModel), cmp.Or(asked.GetPool(), jobspec.DefaultPool)
	if !jobspec.ValidModelName(model) {
		model = ""
	}
	if !ident.Valid(pool) {
		pool = ""
	}
	created, err := d.store.RejectJob(ctx, store.Job{ID: id, Tenant: jobspec.DefaultTenant, Priority: jobspec.DefaultPriority,
		Pool: pool, Model: model, Mode: "chain", Spec: spec, Live: false, TotalFrames: 1,
		ErrorCode: code, ErrorField: field, ErrorMessage: msg}, ev)
	if err != nil {
		return err
	}
	if created {
		d.metrics.jobFinished(ctx, "rejected")
		d.log.Info("job rejected", "job", id, "field", field, "reason", msg)
	}
	return nil
}

// jsonObject reports whether b holds a JSON object that the jobs.spec
// column (jsonb) takes: valid UTF-8 and JSON, an object, without a \u0000
// escape, which jsonb refuses.
func jsonObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && utf8.Valid(b) && json.Valid(b) && !bytes.Contains(b, []byte(`\u0000`))
}

func (d *Dispatcher) accept(ctx context.Context, id string, spec *spoolv1.JobSpec, j jobspec.Job, in Inputs) error {
	var segs []plan.Segment
	var err error
	if j.Live {
		segs, err = j.Plan.Ahead(0, d.cfg.LiveAhead+1)
	} else {
		segs, err = j.Plan.All()
	}
	if err != nil {
		return fmt.Errorf("plan %s: %w", id, err)
	}
	traceparent := traceparentOf(ctx)
	rows, err := segmentRows(j, id, segs, traceparent, in)
	if err != nil {
		return err
	}
	ev, err := eventMsg(ctx, id+".queued", &spoolv1.JobEvent{JobId: id, State: spoolv1.JobState_JOB_STATE_QUEUED,
		SegmentsTotal: uint32(j.Plan.Count()), Message: fmt.Sprintf("planned %d segments", len(rows))})
	if err != nil {
		return err
	}
	raw, err := protojson.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	mode := "chain"
	if j.Mode == plan.Independent {
		mode = "independent"
	}
	created, err := d.store.CreateJob(ctx, store.NewJob{
		Job: store.Job{ID: id, Tenant: j.Tenant, Priority: j.Priority, Pool: j.Pool, Model: j.Model, Mode: mode,
			State: store.JobQueued, Spec: raw, Live: j.Live, TotalFrames: j.InputFrames + j.TotalFrames, FPS: j.FPS, Width: j.Width,
			Height: j.Height, SegmentsTotal: int(j.Plan.Count()), TraceID: traceIDOf(ctx), Traceparent: traceparent,
			LiveAheadS: j.LiveAheadS, LongestPiece: j.Plan.LongestPiece(), InputFrames: in.InputFrames, InputKey: in.InputKey,
			AudioKey: in.Sound.ManifestKey, WaveformKey: in.Sound.PeaksKey},
		Segments: rows,
		Outbox:   []store.OutboxMsg{ev},
		Inputs:   jobInputs(j),
	})
	if err != nil {
		return err
	}
	if created {
		d.log.Info("job accepted", "job", id, "segments", len(rows), "live", j.Live, "tenant", j.Tenant)
	}
	return d.admit(ctx, j.Pool)
}
