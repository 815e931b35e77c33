package stitcher

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The stitcher's spans, stitch.append (one per segment) and stitch.finalize,
// continue the trace of the DONE that caused them: the job's trace.
var tracer = otel.Tracer("github.com/spoolvideo/spool/services/stitcher")

// endSpan ends span, marking it failed when err is set.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
