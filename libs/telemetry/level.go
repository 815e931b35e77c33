package telemetry

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ErrLogLevel is returned (wrapped) for a log level that is not one of
// debug, info, warn or error.
var ErrLogLevel = errors.New("telemetry: invalid log level")

// ParseLevel parses "debug", "info", "warn" or "error" (any case; "warning"
// too). An empty level is info.
func ParseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("%w %q: allowed values are debug, info, warn, error", ErrLogLevel, level)
	}
}

// NewLogger returns a JSON logger writing to w at level (see ParseLevel)
// whose records carry the trace_id and span_id of their context.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(NewLogHandler(w, l)), nil
}
