package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// FetchOne pulls exactly one message from c, waiting up to wait; nothing in
// time is ErrNoMessage. The server holds the pull request for wait and the
// client listens a second longer, so a message the server hands out just
// before the request expires is not dropped on the way (it would come back
// only after AckWait, as if its worker had died). A cancelled ctx ends the
// wait with ctx's error; a message that still arrives for the request is
// Nak'ed, so that it is delivered again at once.
func FetchOne(ctx context.Context, c jetstream.Consumer, wait time.Duration) (jetstream.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: fetch: %w", err)
	}
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(wait))
	if err == nil {
		select {
		case m, ok := <-batch.Messages():
			if ok {
				return m, nil
			}
			err = batch.Error()
		case <-ctx.Done():
			go func() {
				for m := range batch.Messages() {
					_ = m.Nak()
				}
			}()
			return nil, fmt.Errorf("bus: fetch: %w", ctx.Err())
		}
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("bus: fetch: %w", ctx.Err())
	case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, ErrNoMessage
	}
	return nil, fmt.Errorf("bus: fetch: %w", err)
}

func decode[T any, P interface {
	*T
	proto.Message
}](data []byte) (*T, error) {
	var v T
	if err := proto.Unmarshal(data, P(&v)); err != nil {
		return nil, fmt.Errorf("bus: decode %T: %w", P(&v), err)
	}
	return &v, nil
}

// DecodeTask decodes a SegmentTask.
func DecodeTask(data []byte) (*spoolv1.SegmentTask, error) { return decode[spoolv1.SegmentTask](data) }

// DecodeResult decodes a SegmentResult.
func DecodeResult(data []byte) (*spoolv1.SegmentResult, error) {
	return decode[spoolv1.SegmentResult](data)
}

// DecodeEvent decodes a JobEvent.
func DecodeEvent(data []byte) (*spoolv1.JobEvent, error) { return decode[spoolv1.JobEvent](data) }

// DecodeWorkerInfo decodes a WorkerInfo.
func DecodeWorkerInfo(data []byte) (*spoolv1.WorkerInfo, error) {
	return decode[spoolv1.WorkerInfo](data)
}
