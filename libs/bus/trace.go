package bus

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

var tracer = otel.Tracer("github.com/spoolvideo/spool/libs/bus")

// HeaderCarrier adapts nats.Header to OTel's propagation.TextMapCarrier, so
// the W3C trace context (traceparent, tracestate) and baggage travel in
// message headers. NATS headers are case-sensitive; Get falls back to a
// case-insensitive match so that "Traceparent" from another client is found.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return headerValue(nats.Header(c), key) }

// Set replaces the values of key with value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// headerValue is h.Get(key), else the first value of a key equal to it
// under case folding.
func headerValue(h nats.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// InjectTrace writes the trace context of ctx into h with OTel's global
// TextMapPropagator. h must not be nil.
func InjectTrace(ctx context.Context, h nats.Header) {
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier(h))
}

// ContextFromHeader returns ctx carrying the trace context found in h, so a
// span started from it continues the publisher's trace. Without one, ctx is
// returned as is.
func ContextFromHeader(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(h))
}

// ContextFromMsg is ContextFromHeader for a JetStream message.
func ContextFromMsg(ctx context.Context, m jetstream.Msg) context.Context {
	return ContextFromHeader(ctx, m.Headers())
}

// ContextFromNATSMsg is ContextFromHeader for a core NATS message, such as
// a cancel on spool.control.cancel.<job>.
func ContextFromNATSMsg(ctx context.Context, m *nats.Msg) context.Context {
	if m == nil {
		return ctx
	}
	return ContextFromHeader(ctx, m.Header)
}
