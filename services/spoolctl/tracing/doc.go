// Package tracing holds the tests of spool's traces: one job is one trace,
// from job.submit to stitch.finalize, in process (an in-memory recorder) and
// through a real OpenTelemetry Collector that the test reads back.
package tracing
