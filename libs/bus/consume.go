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
// time is ErrNoMessage. A cancelled ctx ends the wait with ctx's error.
func FetchOne(ctx context.Context, c jetstream.Consumer, wait time.Duration) (jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	batch, err := c.Fetch(1, jetstream.FetchContext(fctx))
	if err == nil {
		for m := range batch.Messages() {
			return m, nil
		}
		err = batch.Error()
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
