package telemetry

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// The keys that LogHandler adds to the records of a context with a span.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// LogHandler is a slog JSON handler that adds the trace_id and span_id of
// the record's context, when it holds a valid span. The two stay at the top
// level of the record, outside any group opened with WithGroup, so that a
// log pipeline finds them in one place.
type LogHandler struct {
	// inner holds the attributes given before the first group.
	inner slog.Handler
	// scopes holds, in order, the groups and attributes given from the
	// first group on; Handle nests the record's attributes inside them.
	scopes []scope
}

// scope is one WithGroup (group set) or one WithAttrs (attrs set) call.
type scope struct {
	group string
	attrs []slog.Attr
}

// NewLogHandler writes JSON records at or above level to w.
func NewLogHandler(w io.Writer, level slog.Leveler) *LogHandler {
	return &LogHandler{inner: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})}
}

// Enabled implements slog.Handler.
func (h *LogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if len(h.scopes) == 0 {
		if sc.IsValid() {
			r = r.Clone()
			r.AddAttrs(traceAttrs(sc)...)
		}
		return h.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if sc.IsValid() {
		out.AddAttrs(traceAttrs(sc)...)
	}
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	for i := len(h.scopes) - 1; i >= 0; i-- {
		if s := h.scopes[i]; s.group != "" {
			attrs = []slog.Attr{{Key: s.group, Value: slog.GroupValue(attrs...)}}
		} else {
			attrs = append(slices.Clip(s.attrs), attrs...)
		}
	}
	out.AddAttrs(attrs...)
	return h.inner.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	if len(h.scopes) == 0 {
		return &LogHandler{inner: h.inner.WithAttrs(as)}
	}
	return &LogHandler{inner: h.inner, scopes: append(slices.Clip(h.scopes), scope{attrs: slices.Clone(as)})}
}

// WithGroup implements slog.Handler. The attributes of later records and
// WithAttrs calls go inside the group; trace_id and span_id do not.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &LogHandler{inner: h.inner, scopes: append(slices.Clip(h.scopes), scope{group: name})}
}

func traceAttrs(sc trace.SpanContext) []slog.Attr {
	return []slog.Attr{
		slog.String(TraceIDKey, sc.TraceID().String()),
		slog.String(SpanIDKey, sc.SpanID().String()),
	}
}
