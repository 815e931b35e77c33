package telemetry

import "go.opentelemetry.io/otel/attribute"

// The attributes of spool's spans (and metrics, where they bound the
// cardinality): which job, segment and attempt a span is about, and which
// worker, GPU and model did the work.
const (
	AttrJob     = attribute.Key("spool.job")
	AttrSegment = attribute.Key("spool.segment")
	AttrAttempt = attribute.Key("spool.attempt")
	AttrPool    = attribute.Key("spool.pool")
	AttrWorker  = attribute.Key("spool.worker")
	AttrGPU     = attribute.Key("spool.gpu")
	AttrModel   = attribute.Key("spool.model")
)
