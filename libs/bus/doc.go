// Package bus is spool's NATS JetStream layer: the connection, the streams,
// consumers and KV bucket declared in code, every subject, and publish and
// consume helpers that carry W3C trace context in message headers.
//
//	b, err := bus.Connect(ctx, cfg.NATS, bus.WithLogger(log))
//	defer b.Close()
//	err = b.Declare(ctx)                     // streams, consumers, spool_workers
//	c, err := b.DeclarePool(ctx, "h100")     // pool-h100 on SPOOL_SEGMENTS
//	ack, err := b.PublishTask(ctx, task)     // Nats-Msg-Id <job>.<seg>.<attempt>.task
//	m, err := bus.FetchOne(ctx, c, time.Second)
//	ctx = bus.ContextFromMsg(ctx, m)         // continues the publisher's trace
//	task, err := bus.DecodeTask(m.Data())
//
// Files: bus.go (Connect, options.go), topology.go (Declare, DeclarePool,
// topology_options.go), subjects.go (every subject, stream, consumer, bucket
// and message id), publish.go, consume.go, trace.go (header carrier), job.go
// (job submission and decoding), errors.go (sentinel errors).
//
// JetStream is the transport, not the truth: every publish carries a
// deterministic Nats-Msg-Id so that a retry within the dedup window is
// stored once, and Postgres unique keys catch duplicates beyond it.
package bus
