// Package bus is spool's NATS JetStream layer: the connection, the streams,
// consumers and KV bucket declared in code, every subject, and publish and
// consume helpers that carry W3C trace context in message headers.
//
// JetStream is the transport, not the truth: every publish carries a
// deterministic Nats-Msg-Id so that a retry within the dedup window is
// stored once, and Postgres unique keys catch duplicates beyond it.
package bus
