package worker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolvideo/spool/libs/telemetry"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

var tracer = otel.Tracer("github.com/spoolvideo/spool/services/worker")

// attemptAttrs name a segment attempt and what runs it.
func attemptAttrs(s *slot, t *spoolv1.SegmentTask) []attribute.KeyValue {
	a := []attribute.KeyValue{telemetry.AttrJob.String(t.JobId), telemetry.AttrSegment.Int64(int64(t.Index)),
		telemetry.AttrAttempt.Int64(int64(t.Attempt)), telemetry.AttrPool.String(t.Pool)}
	if s != nil {
		gpu := s.gpu.Name
		if gpu == "" {
			gpu = "cpu" // a CPU slot, as lineage and the dashboard show it
		}
		a = append(a, telemetry.AttrWorker.String(s.id), telemetry.AttrGPU.String(gpu),
			telemetry.AttrModel.String(t.Model))
	}
	return a
}

// queueSpan records segment.queue, from when the task entered the stream to
// when this slot took it, as a child of the job's dispatch.plan (the
// message's trace context). It is the attempt's span: the phases that
// follow, and the stitcher's append of its video, are its children.
func queueSpan(ctx context.Context, s *slot, t *spoolv1.SegmentTask, enqueued, received time.Time) context.Context {
	if enqueued.IsZero() || enqueued.After(received) {
		enqueued = received
	}
	ctx, span := tracer.Start(ctx, "segment.queue", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(enqueued), trace.WithAttributes(attemptAttrs(s, t)...))
	span.End(trace.WithTimestamp(received))
	return ctx
}

// phaseSpans records the finished phases of an attempt, each from its start
// to the next one's, as children of its segment.queue span in ctx.
func phaseSpans(ctx context.Context, s *slot, t *spoolv1.SegmentTask, marks []phaseMark) {
	attrs := attemptAttrs(s, t)
	for i := 0; i+1 < len(marks); i++ {
		_, span := tracer.Start(ctx, marks[i].name, trace.WithTimestamp(marks[i].at), trace.WithAttributes(attrs...))
		span.End(trace.WithTimestamp(marks[i+1].at))
	}
}

// phaseMark is when a phase began (the last mark ends the last phase).
type phaseMark struct {
	name string
	at   time.Time
}

// failSpan records why an attempt did not finish, on its segment.queue span's
// trace, as a zero-length child that carries the error.
func failSpan(ctx context.Context, s *slot, t *spoolv1.SegmentTask, class spoolv1.ErrorClass, err error) {
	_, span := tracer.Start(ctx, "segment.failed", trace.WithAttributes(append(attemptAttrs(s, t),
		attribute.String("spool.error_class", class.String()))...))
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.End()
}
