package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// ErrMalformedJob is wrapped by every error of DecodeJobSpec.
var ErrMalformedJob = errors.New("malformed job spec")

// MaxJobSpecBytes bounds a submitted spec.
const MaxJobSpecBytes = 1 << 20

// DecodeJobSpec decodes a submission: protobuf by default, JSON (protojson:
// camelCase or proto field names) when the Content-Type header says
// application/json or the body starts with '{'. The error names what is
// wrong, e.g. the field with a bad value or an unknown field.
func DecodeJobSpec(data []byte, h nats.Header) (*spoolv1.JobSpec, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty job spec: send a JobSpec as protobuf or JSON", ErrMalformedJob)
	}
	if len(data) > MaxJobSpecBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d bytes", ErrMalformedJob, len(data), MaxJobSpecBytes)
	}
	var spec spoolv1.JobSpec
	ct := ""
	if h != nil {
		ct = strings.ToLower(h.Get(HeaderContentType))
	}
	isJSON := strings.HasPrefix(ct, ContentJSON) || (ct == "" && bytes.TrimLeft(data, " \t\r\n")[0] == '{')
	if isJSON {
		if err := (protojson.UnmarshalOptions{}).Unmarshal(data, &spec); err != nil {
			return nil, fmt.Errorf("%w: JSON: %s", ErrMalformedJob, cleanProtoErr(err))
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
	msg, err := NewMsg(ctx, SubjectJobSubmit, spec)
	if err != nil {
		return "", nil, err
	}
	var opts []jetstream.PublishOpt
	if spec.GetId() != "" {
		opts = append(opts, jetstream.WithMsgID(spec.GetId()))
	}
	ack, err := b.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return "", nil, fmt.Errorf("bus: submit job: %w", err)
	}
	return JobIDFromSubmission(spec, "", ack.Sequence), ack, nil
}
