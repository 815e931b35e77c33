package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/spoolvideo/spool/libs/telemetry"
)

func TestLogHandler(t *testing.T) {
	clearOTEL(t)
	tel := setup(t, "spool-test")
	ctx, span := tel.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	sc := span.SpanContext()
	ids := map[string]any{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()}

	tests := []struct {
		name string
		ctx  context.Context
		log  func(*slog.Logger, context.Context)
		want map[string]any // besides time, level and msg
	}{
		{
			name: "span",
			ctx:  ctx,
			log:  func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m", "k", 1) },
			want: merge(ids, map[string]any{"k": 1.0}),
		},
		{
			name: "no span",
			ctx:  context.Background(),
			log:  func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m", "k", 1) },
			want: map[string]any{"k": 1.0},
		},
		{
			name: "invalid span context",
			ctx:  trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}),
			log:  func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m") },
			want: map[string]any{},
		},
		{
			name: "with attrs",
			ctx:  ctx,
			log:  func(l *slog.Logger, ctx context.Context) { l.With("job", "j1").InfoContext(ctx, "m", "k", 1) },
			want: merge(ids, map[string]any{"job": "j1", "k": 1.0}),
		},
		{
			name: "group keeps trace ids at the top",
			ctx:  ctx,
			log: func(l *slog.Logger, ctx context.Context) {
				l.With("job", "j1").WithGroup("seg").With("index", 2).WithGroup("gpu").InfoContext(ctx, "m", "mem", 3)
			},
			want: merge(ids, map[string]any{
				"job": "j1",
				"seg": map[string]any{"index": 2.0, "gpu": map[string]any{"mem": 3.0}},
			}),
		},
		{
			name: "group without span",
			ctx:  context.Background(),
			log:  func(l *slog.Logger, ctx context.Context) { l.WithGroup("seg").InfoContext(ctx, "m", "k", 1) },
			want: map[string]any{"seg": map[string]any{"k": 1.0}},
		},
		{
			name: "empty group is left out",
			ctx:  ctx,
			log:  func(l *slog.Logger, ctx context.Context) { l.WithGroup("seg").InfoContext(ctx, "m") },
			want: ids,
		},
		{
			name: "empty group name",
			ctx:  ctx,
			log:  func(l *slog.Logger, ctx context.Context) { l.WithGroup("").InfoContext(ctx, "m", "k", 1) },
			want: merge(ids, map[string]any{"k": 1.0}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(slog.New(telemetry.NewLogHandler(&buf, slog.LevelInfo)), tt.ctx)
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%v: %s", err, buf.String())
			}
			if got["msg"] != "m" || got["level"] != "INFO" || got["time"] == nil {
				t.Fatalf("record lacks time, level or msg: %s", buf.String())
			}
			delete(got, "msg")
			delete(got, "level")
			delete(got, "time")
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestLogHandlerLevel(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(telemetry.NewLogHandler(&buf, slog.LevelWarn))
	l.Info("dropped")
	l.Warn("kept")
	if s := buf.String(); strings.Contains(s, "dropped") || !strings.Contains(s, "kept") {
		t.Fatalf("level not honoured: %s", s)
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		level   string
		want    slog.Level
		wantErr bool
	}{
		{level: "debug", want: slog.LevelDebug},
		{level: "info", want: slog.LevelInfo},
		{level: "", want: slog.LevelInfo},
		{level: "warn", want: slog.LevelWarn},
		{level: "WARNING", want: slog.LevelWarn},
		{level: " Error ", want: slog.LevelError},
		{level: "loud", wantErr: true},
		{level: "trace", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			l, err := telemetry.NewLogger(&bytes.Buffer{}, tt.level)
			if tt.wantErr {
				if !errors.Is(err, telemetry.ErrLogLevel) || !strings.Contains(err.Error(), "debug, info, warn, error") ||
					!strings.Contains(err.Error(), tt.level) {
					t.Fatalf("err = %v, want ErrLogLevel naming the allowed values", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if !l.Enabled(ctx, tt.want) || (tt.want > slog.LevelDebug && l.Enabled(ctx, tt.want-1)) {
				t.Fatalf("logger at %q is not at %v", tt.level, tt.want)
			}
		})
	}
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
