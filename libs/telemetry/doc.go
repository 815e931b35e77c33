// Package telemetry sets up OpenTelemetry tracing and metrics from the
// standard OTEL_* variables, and a slog JSON logger that stamps every record
// with the trace_id and span_id of its context.
//
// With no OTLP endpoint and no OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER
// set, nothing is exported: spans are still created and propagated (so logs
// carry trace ids and traces cross NATS), but no connection is attempted.
package telemetry
