package tracing_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/telemetry"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

var (
	recorder = tracetest.NewSpanRecorder()
	tel      *telemetry.Telemetry
	// collector is the real collector's file of exported traces; empty
	// with why in noCollector when it could not run.
	collector, noCollector string
)

// TestMain starts a real OpenTelemetry Collector (devstack's, built by
// `make otelcol`) and sets up the process's telemetry from the OTEL_*
// variables to export to it, plus an in-memory recorder, before the system
// starts.
func TestMain(m *testing.M) {
	ctx := context.Background()
	st, err := devstack.Start(ctx, devstack.Options{Collector: true})
	if err != nil {
		noCollector = err.Error()
	} else {
		collector = st.TracesFile
		for _, kv := range st.Env() {
			if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
				os.Setenv(k, v)
			}
		}
		os.Setenv("OTEL_METRICS_EXPORTER", "none")
		os.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	}
	tel, err = telemetry.Setup(ctx, "spool-tracing-test", telemetry.WithSpanProcessor(recorder))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := devstacktest.Run(m)
	_ = tel.Shutdown(ctx)
	if st != nil {
		_ = st.Stop()
	}
	os.Exit(code)
}

// TestOneJobOneTrace runs a chain job through the whole system, submitted
// over HTTP, and checks its trace: as recorded in process, and as the real
// collector exported it.
func TestOneJobOneTrace(t *testing.T) {
	sys := systest.Start(t, 30*time.Second, 2)
	const job, segments = "traced-chain", 3
	spec := `{"id":"` + job + `","prompt":"a kite over dunes","durationFrames":30,"windowFrames":13,"overlapFrames":4,` +
		`"width":96,"height":64,"steps":3,"seed":9,"fps":24,"pool":"` + systest.Pool + `"}`
	sys.Submit(t, spec)
	if j := sys.WaitSucceeded(t, job, 60*time.Second); j.SegmentsTotal != segments {
		t.Fatalf("%d segments, want %d", j.SegmentsTotal, segments)
	}
	ctx := context.Background()

	t.Run("in-memory", func(t *testing.T) {
		var errs []string
		var got []span
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			got = recorded()
			if errs = checkTree(got, job, segments); len(errs) == 0 {
				return
			}
		}
		t.Fatalf("the recorded trace (%s):\n%s", names(got), strings.Join(errs, "\n"))
	})

	t.Run("collector", func(t *testing.T) {
		if noCollector != "" {
			t.Fatal(noCollector)
		}
		var errs []string
		var got []span
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			_ = tel.ForceFlush(ctx)
			if got, err = exported(collector); err != nil {
				t.Fatal(err)
			}
			if errs = checkTree(got, job, segments); len(errs) == 0 {
				t.Logf("the collector exported %d spans: %s", len(got), names(got))
				return
			}
		}
		t.Fatalf("the trace read back from the collector (%s):\n%s", names(got), strings.Join(errs, "\n"))
	})
}

// recorded is what the in-memory recorder holds.
func recorded() []span {
	var out []span
	for _, s := range recorder.Ended() {
		out = append(out, fromSDK(s))
	}
	return out
}

func fromSDK(s sdktrace.ReadOnlySpan) span {
	sp := span{Name: s.Name(), TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(),
		Attrs: map[string]string{}}
	if s.Parent().IsValid() {
		sp.Parent = s.Parent().SpanID().String()
	}
	for _, a := range s.Attributes() {
		sp.Attrs[string(a.Key)] = a.Value.Emit()
	}
	return sp
}

// exported reads the collector's file exporter output: one OTLP/JSON
// ExportTraceServiceRequest per line.
func exported(path string) ([]span, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []span
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var req otlpTraces
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return nil, fmt.Errorf("collector output %s: %w", path, err)
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					sp := span{Name: s.Name, TraceID: s.TraceID, SpanID: s.SpanID, Parent: s.ParentSpanID, Attrs: map[string]string{}}
					for _, a := range s.Attributes {
						sp.Attrs[a.Key] = a.Value.String()
					}
					out = append(out, sp)
				}
			}
		}
	}
	return out, sc.Err()
}

// otlpTraces is the part of OTLP/JSON's ExportTraceServiceRequest read here.
type otlpTraces struct {
	ResourceSpans []struct {
		ScopeSpans []struct {
			Spans []struct {
				TraceID      string `json:"traceId"`
				SpanID       string `json:"spanId"`
				ParentSpanID string `json:"parentSpanId"`
				Name         string `json:"name"`
				Attributes   []struct {
					Key   string   `json:"key"`
					Value anyValue `json:"value"`
				} `json:"attributes"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

// anyValue is an OTLP/JSON AnyValue of a string or an integer (which
// OTLP/JSON writes as a string).
type anyValue struct {
	StringValue *string `json:"stringValue"`
	IntValue    *string `json:"intValue"`
}

func (v anyValue) String() string {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.IntValue != nil:
		return *v.IntValue
	}
	return ""
}
