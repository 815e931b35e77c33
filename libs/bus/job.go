package bus

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/telemetry"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// MaxJobSpecBytes bounds a submitted spec (1 MiB).
const MaxJobSpecBytes = 1 << 20

// DecodeJobSpec decodes a submission. The Content-Type header (matched
// without regard to case, parameters ignored) picks the encoding:
// application/protobuf (or x-protobuf) is protobuf and application/json is
// JSON (protojson: camelCase or proto field names, unknown fields refused).
// Without a Content-Type, a body that starts with '{' after white space is
// JSON and any other is protobuf, the default. Every error wraps
// ErrMalformedJob and names what is wrong: an empty body, the size limit,
// an unsupported content type, or the field with a bad value or an unknown
// name.
func DecodeJobSpec(data []byte, h nats.Header) (*spoolv1.JobSpec, error) {
	if len(data) > MaxJobSpecBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d bytes (1 MiB)", ErrMalformedJob, len(data), MaxJobSpecBytes)
	}
	body := bytes.TrimLeft(data, " \t\r\n")
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: empty job spec: send a JobSpec as protobuf or JSON", ErrMalformedJob)
	}
	isJSON := body[0] == '{'
	if ct := headerValue(h, HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: content type %q: %w", ErrMalformedJob, ct, err)
		case mt == ContentJSON:
			isJSON = true
		case mt == ContentProtobuf || mt == "application/x-protobuf":
			isJSON = false
		default:
			return nil, fmt.Errorf("%w: unsupported content type %q: want %s or %s", ErrMalformedJob, ct, ContentProtobuf, ContentJSON)
		}
	}
	var spec spoolv1.JobSpec
	if isJSON {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data, &spec); err != nil {
			msg := cleanProtoErr(err)
			return nil, fmt.Errorf("%w: JSON: %s%s", ErrMalformedJob, msg, jsonHint(msg))
		}
		return &spec, nil
	}
	if err := proto.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%w: protobuf: %s (send JSON with Content-Type: application/json)", ErrMalformedJob, cleanProtoErr(err))
	}
	return &spec, nil
}

// cleanProtoErr drops the "proto: " prefix and the non-breaking spaces that
// the protobuf runtime puts in its messages to discourage parsing them.
func cleanProtoErr(err error) string {
	s := strings.ReplaceAll(err.Error(), "\u00a0", " ")
	s = strings.TrimPrefix(s, "proto: ")
	return strings.TrimPrefix(s, "proto:")
}

// JobIDFromSubmission is the job id of a submission (DESIGN §2): the spec's
// id, else the Nats-Msg-Id of the message, else "j<stream sequence>".
func JobIDFromSubmission(spec *spoolv1.JobSpec, msgID string, streamSeq uint64) string {
	switch {
	case spec.GetId() != "":
		return spec.GetId()
	case msgID != "":
		return msgID
	}
	return "j" + strconv.FormatUint(streamSeq, 10)
}

// SubmitJob publishes spec to spool.jobs.submit as protobuf and returns the
// job id. A spec with an id is sent with that id as Nats-Msg-Id, so a
// resubmission within the dedup window is a no-op.
func (b *Bus) SubmitJob(ctx context.Context, spec *spoolv1.JobSpec) (string, *jetstream.PubAck, error) {
	ctx, span := StartSubmit(ctx)
	defer span.End()
	ack, err := b.PublishSubmission(ctx, spec)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish")
		return "", nil, err
	}
	id := JobIDFromSubmission(spec, "", ack.Sequence)
	span.SetAttributes(telemetry.AttrJob.String(id))
	return id, ack, nil
}

// StartSubmit starts the span job.submit, the root of a job's trace (or a
// child of the caller's), and returns ctx carrying it. A submitter that
// records the spec before it publishes it (the gateway) stores
// Traceparent of that ctx with it; end the span once submitted.
func StartSubmit(ctx context.Context) (context.Context, trace.Span) {
	return tracer.Start(ctx, "job.submit", trace.WithSpanKind(trace.SpanKindProducer))
}

// PublishSubmission publishes spec to spool.jobs.submit as protobuf, with
// the trace context of ctx, without a span of its own. A spec with an id
// is sent with that id as Nats-Msg-Id. A missing stream is declared again
// (Heal) and the publish sent once more.
func (b *Bus) PublishSubmission(ctx context.Context, spec *spoolv1.JobSpec) (*jetstream.PubAck, error) {
	msg, err := NewMsg(ctx, SubjectJobSubmit, spec)
	if err != nil {
		return nil, err
	}
	var opts []jetstream.PublishOpt
	if spec.GetId() != "" {
		opts = append(opts, jetstream.WithMsgID(spec.GetId()))
	}
	var ack *jetstream.PubAck
	err = b.healed(ctx, func() (err error) { ack, err = b.js.PublishMsg(ctx, msg, opts...); return err })
	if err != nil {
		return nil, fmt.Errorf("bus: submit job: %w", err)
	}
	return ack, nil
}

// Traceparent is the W3C traceparent of ctx's span; "" without one.
func Traceparent(ctx context.Context) string {
	h := nats.Header{}
	InjectTrace(ctx, h)
	return headerValue(h, "traceparent")
}

// ContextFromTraceparent returns ctx carrying the W3C trace context
// traceparent (as Traceparent wrote it), so that a span started from it
// joins that trace; ctx as it is when traceparent is "".
func ContextFromTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	h := nats.Header{}
	h.Set("traceparent", traceparent)
	return ContextFromHeader(ctx, h)
}
