package bus_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolvideo/spool/libs/bus"
)

func TestHeaderCarrier(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		name   string
		header nats.Header
		valid  bool
	}{
		{"w3c name", nats.Header{"traceparent": {tp}}, true},
		{"other case", nats.Header{"Traceparent": {tp}}, true},
		{"absent", nats.Header{"Content-Type": {"application/protobuf"}}, false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := propagation.TraceContext{}.Extract(context.Background(), bus.HeaderCarrier(c.header))
			sc := trace.SpanContextFromContext(ctx)
			if sc.IsValid() != c.valid || c.valid && sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Fatalf("span context %v, want valid=%v", sc, c.valid)
			}
		})
	}
	h := nats.Header{}
	bus.HeaderCarrier(h).Set("traceparent", tp)
	if keys := bus.HeaderCarrier(h).Keys(); len(keys) != 1 || keys[0] != "traceparent" || h.Get("traceparent") != tp {
		t.Fatalf("set: %v", h)
	}
	// Without a trace in ctx nothing is written; a nil message keeps ctx.
	empty := nats.Header{}
	bus.InjectTrace(context.Background(), empty)
	if len(empty) != 0 {
		t.Fatalf("injected %v from an empty context", empty)
	}
	if ctx := context.Background(); bus.ContextFromNATSMsg(ctx, nil) != ctx {
		t.Fatal("a nil message changed the context")
	}
}
