package bus

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Header names and content types.
const (
	HeaderContentType = "Content-Type"
	ContentProtobuf   = "application/protobuf"
	ContentJSON       = "application/json"
)

// NewMsg encodes m as a protobuf message to subject, with the trace context
// of ctx in its headers.
func NewMsg(ctx context.Context, subject string, m proto.Message) (*nats.Msg, error) {
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("bus: encode %T: %w", m, err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderContentType, ContentProtobuf)
	InjectTrace(ctx, msg.Header)
	return msg, nil
}

// Publish stores m on subject in JetStream with Nats-Msg-Id msgID (required:
// it makes a retried publish a no-op). A duplicate within the dedup window
// returns the original's PubAck with Duplicate set, and no error. A publish
// that finds no stream (the server lost its store) heals the topology and
// is sent once more.
func (b *Bus) Publish(ctx context.Context, subject, msgID string, m proto.Message) (*jetstream.PubAck, error) {
	if msgID == "" {
		return nil, fmt.Errorf("bus: publish %s: %w", subject, ErrMissingMsgID)
	}
	msg, err := NewMsg(ctx, subject, m)
	if err != nil {
		return nil, err
	}
	var ack *jetstream.PubAck
	err = b.healed(ctx, func() (err error) {
		ack, err = b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bus: publish %s (%s): %w", subject, msgID, err)
	}
	return ack, nil
}

// PublishTask publishes a segment task to its pool.
func (b *Bus) PublishTask(ctx context.Context, t *spoolv1.SegmentTask) (*jetstream.PubAck, error) {
	subject, err := SegmentsSubject(t.GetPool())
	if err != nil {
		return nil, err
	}
	return b.Publish(ctx, subject, TaskMsgID(t.GetJobId(), t.GetIndex(), t.GetAttempt()), t)
}

// PublishResult publishes a segment result on its job's subject, with the
// Nats-Msg-Id <job>.<seg>.<attempt>.<phase>. A FAILED result of class
// RETURNED has its own (…PHASE_FAILED.returned): the worker that gave a
// task back may report it after another worker, handed the task again,
// reported the same attempt ABANDONED, and the dispatcher must still hear
// that it was given back (it then does not count it).
func (b *Bus) PublishResult(ctx context.Context, r *spoolv1.SegmentResult) (*jetstream.PubAck, error) {
	subject, err := ResultsSubject(r.GetJobId())
	if err != nil {
		return nil, err
	}
	id := ResultMsgID(r.GetJobId(), r.GetIndex(), r.GetAttempt(), r.GetPhase().String())
	if r.GetPhase() == spoolv1.Phase_PHASE_FAILED && r.GetErrorClass() == spoolv1.ErrorClass_ERROR_CLASS_RETURNED {
		id += ".returned"
	}
	return b.Publish(ctx, subject, id, r)
}

// PublishEvent publishes a job event with the given Nats-Msg-Id.
func (b *Bus) PublishEvent(ctx context.Context, msgID string, e *spoolv1.JobEvent) (*jetstream.PubAck, error) {
	subject, err := EventsSubject(e.GetJobId())
	if err != nil {
		return nil, err
	}
	return b.Publish(ctx, subject, msgID, e)
}

// PublishCancel records job in the spool_cancelled bucket, so that a
// worker skips its tasks still queued, then tells every running worker and
// service on core NATS.
func (b *Bus) PublishCancel(ctx context.Context, job string) error {
	subject, err := CancelSubject(job)
	if err != nil {
		return err
	}
	kv, err := b.Cancelled(ctx)
	if err != nil {
		return err
	}
	if err := b.healed(ctx, func() error {
		_, err := kv.Put(ctx, job, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		return err
	}); err != nil {
		return fmt.Errorf("bus: record cancel of %s: %w", job, err)
	}
	msg := &nats.Msg{Subject: subject, Header: nats.Header{}}
	InjectTrace(ctx, msg.Header)
	if err := b.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("bus: publish cancel of %s: %w", job, err)
	}
	return nil
}

// PublishVoid tells every running worker on core NATS that the tail state
// at tailKey, an object key of job's, will never reach the store: a worker
// waiting for it as its segment's conditioning stops waiting. The message's
// body is the key. Core NATS delivers it to those connected now; a worker
// that misses it waits its bounded SPOOL_WORKER_TAIL_WAIT instead.
func (b *Bus) PublishVoid(ctx context.Context, job, tailKey string) error {
	subject, err := VoidSubject(job)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: subject, Data: []byte(tailKey), Header: nats.Header{}}
	InjectTrace(ctx, msg.Header)
	if err := b.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("bus: publish void of %s: %w", tailKey, err)
	}
	return nil
}

// VoidOf reads a message of spool.control.void.<job>: the job, from the
// subject, and the void tail's key, from the body.
func VoidOf(m *nats.Msg) (job, tailKey string, err error) {
	job, ok := strings.CutPrefix(m.Subject, subjectVoid)
	if !ok || !ValidToken(job) || len(m.Data) == 0 {
		return "", "", fmt.Errorf("bus: %w: void message on %q with %d bytes", ErrInvalidToken, m.Subject, len(m.Data))
	}
	return job, string(m.Data), nil
}
