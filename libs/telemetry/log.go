package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler is a slog JSON handler that adds the trace_id and span_id of
// the record's context, when it holds a valid span.
type LogHandler struct {
	inner slog.Handler
}

// NewLogHandler writes JSON records at or above level to w.
func NewLogHandler(w io.Writer, level slog.Leveler) *LogHandler {
	return &LogHandler{inner: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})}
}

// NewLogger returns a JSON logger at level "debug", "info", "warn" or
// "error".
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "", "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("telemetry: log level %q: allowed: debug, info, warn, error", level)
	}
	return slog.New(NewLogHandler(w, l)), nil
}

// Enabled implements slog.Handler.
func (h *LogHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &LogHandler{inner: h.inner.WithAttrs(as)}
}

// WithGroup implements slog.Handler. Trace ids of later records land inside
// the group, like every other attribute.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	return &LogHandler{inner: h.inner.WithGroup(name)}
}
