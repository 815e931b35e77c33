package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/spoolvideo/spool/libs/bus"
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

// TestOneJobOneTrace runs the demo's kind of job through the whole system,
// submitted over HTTP (a chain with a prompt timeline, several segments),
// three ways: with every DONE reaching the stitcher; with none reaching it
// (the stitchers' consumer paused, as if JetStream lost them), so that the
// stitcher's sweep does all its work; and as a live job stopped after a
// few segments. It checks their traces, as recorded in process and as the
// real collector exported them: each job is exactly one trace, whatever
// path did its work, and no span is outside a job's trace.
func TestOneJobOneTrace(t *testing.T) {
	sys := systest.Start(t, 30*time.Second, 2)
	const job, swept, live, segments = "traced-chain", "traced-swept", "traced-live", 4
	spec := func(id string) string {
		return `{"id":"` + id + `","timeline":[{"fromS":0,"prompt":"a kite over dunes"},{"fromS":0.9,"prompt":"a kite over the sea"},` +
			`{"fromS":1.3,"prompt":"a kite at dusk"}],"durationFrames":40,"windowFrames":13,"overlapFrames":4,` +
			`"width":96,"height":64,"steps":3,"seed":9,"fps":24,"pool":"` + systest.Pool + `"}`
	}
	ctx := context.Background()
	sys.Submit(t, spec(job))
	if j := sys.WaitSucceeded(t, job, 60*time.Second); j.SegmentsTotal != segments {
		t.Fatalf("%d segments, want %d", j.SegmentsTotal, segments)
	}
	js := sys.Bus.JetStream()
	if _, err := js.PauseConsumer(ctx, bus.StreamResults, bus.ConsumerStitcher, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	sys.Submit(t, spec(swept))
	sys.WaitSucceeded(t, swept, 60*time.Second)
	if _, err := js.ResumeConsumer(ctx, bus.StreamResults, bus.ConsumerStitcher); err != nil {
		t.Fatal(err)
	}
	sys.Submit(t, `{"id":"`+live+`","prompt":"waves","live":true,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,`+
		`"steps":3,"seed":9,"fps":24,"pool":"`+systest.Pool+`"}`)
	stopLive(t, sys, live, 2)
	check := func(all []span) []string {
		errs := checkTree(all, job, segments)
		errs = append(errs, checkTree(all, swept, segments)...)
		errs = append(errs, checkStopped(all, live)...)
		return append(errs, checkNoOrphan(all, job, swept, live)...)
	}

	t.Run("in-memory", func(t *testing.T) {
		var errs []string
		var got []span
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			got = recorded()
			if errs = check(got); len(errs) == 0 {
				return
			}
		}
		t.Fatalf("the recorded traces (%s):\n%s", names(got), strings.Join(errs, "\n"))
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
			if errs = check(got); len(errs) == 0 {
				t.Logf("the collector exported %d spans: %s", len(got), names(got))
				noSecretIn(t, collector, sys)
				return
			}
		}
		t.Fatalf("the traces read back from the collector (%s):\n%s", names(got), strings.Join(errs, "\n"))
	})
}

// stopLive waits for n segments of live job id to be committed, cancels
// it over HTTP and waits for its final video.
func stopLive(t *testing.T, sys *systest.System, id string, n int) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		j, err := sys.Store.GetJob(ctx, id)
		if err == nil && j.SegmentsDone >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live job %s: %+v, %v", id, j, err)
		}
	}
	resp := sys.Do(t, "POST", "/jobs/"+id+"/cancel", "application/json", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel %s: %s", id, resp.Status)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		j, err := sys.Store.GetJob(ctx, id)
		if err == nil && j.FinalKey != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stopped live job %s was not finalized: %+v, %v", id, j, err)
		}
	}
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
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The collector may be writing its last line: only whole lines, those
	// ended by a newline, are read; the rest is read on the next try.
	if end := bytes.LastIndexByte(data, '\n'); end >= 0 {
		data = data[:end+1]
	} else {
		data = nil
	}
	var out []span
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var req otlpTraces
		if err := json.Unmarshal(line, &req); err != nil {
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
	return out, nil
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

// noSecretIn fails t when the file at path (the collector's export) holds
// a credential of sys's stack: a NATS password or the S3 secret key.
func noSecretIn(t *testing.T, path string, sys *systest.System) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"the NATS admin password": sys.Stack.NATSConfig().Password.Reveal(), "the S3 secret key": sys.Stack.S3SecretKey}
	for _, role := range bus.Roles {
		if c, err := sys.Stack.NATSUser(role, systest.Pool, ""); err == nil {
			secrets["the NATS password of "+c.User] = c.Password.Reveal()
		}
	}
	for name, v := range secrets {
		if v != "" && strings.Contains(string(data), v) {
			t.Errorf("the exported traces hold %s", name)
		}
	}
}
