package stitcher

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolvideo/spool/libs/store"
)

// The stitcher's spans, stitch.append (one per segment) and stitch.finalize,
// belong to the job's trace: under the DONE that caused them when one did,
// else under the job's stored trace context (jobContext).
var tracer = otel.Tracer("github.com/spoolvideo/spool/services/stitcher")

// jobContext is ctx carrying job jb's trace: ctx itself when its span is in
// the job's trace (a DONE's, which continues the task's), else ctx with the
// job's stored trace context as the remote parent, so that whatever started
// the work (the sweep, a stop, a resumed stitch) starts its spans in the
// job's trace. A job without a stored trace context leaves ctx as it is.
func jobContext(ctx context.Context, jb store.Job) context.Context {
	if jb.Traceparent == "" {
		return ctx
	}
	parent := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": jb.Traceparent}))
	if !parent.IsValid() {
		return ctx
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.TraceID() == parent.TraceID() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, parent)
}

// endSpan ends span, marking it failed when err is set.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
