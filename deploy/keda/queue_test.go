package keda_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// jobSeq makes every test task's job id, and so its Nats-Msg-Id, unique.
var jobSeq atomic.Int64

// publish puts n tasks on pool's subject through spool's publisher.
func publish(t *testing.T, b *bus.Bus, pool string, n int) {
	t.Helper()
	for i := range n {
		task := &spoolv1.SegmentTask{JobId: fmt.Sprintf("keda-%d", jobSeq.Add(1)), Index: uint32(i), Attempt: 1, Pool: pool}
		if _, err := b.PublishTask(t.Context(), task); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// take fetches n tasks as a worker does, without acking them: they stay
// delivered and unacknowledged (in progress) until ack.
func take(t *testing.T, cons jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	var msgs []jetstream.Msg
	for range n {
		m, err := bus.FetchOne(t.Context(), cons, clusterReadyTimeout)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// ack acknowledges msgs as a worker does when their segments are done.
func ack(t *testing.T, msgs []jetstream.Msg) {
	t.Helper()
	for _, m := range msgs {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

type state struct {
	pending    uint64 // not yet delivered
	ackPending int    // delivered, not acknowledged
}

// consumerState asks JetStream for the consumer's counts (its leader
// answers).
func consumerState(t *testing.T, cons jetstream.Consumer) state {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return state{pending: info.NumPending, ackPending: info.NumAckPending}
}
