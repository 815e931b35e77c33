package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// collectorBinEnv names the variable that points at a collector binary.
const collectorBinEnv = "SPOOL_OTELCOL_BIN"

// collectorReadyTimeout bounds the wait for the collector's OTLP port.
const collectorReadyTimeout = 30 * time.Second

// collectorServer is an OpenTelemetry Collector (spool-otelcol, built by
// `make otelcol` from deploy/otel/builder.yaml) receiving OTLP/HTTP and
// writing what it gets, as OTLP/JSON lines, under its directory.
type collectorServer struct {
	proc     *process
	endpoint string // http://127.0.0.1:port
	traces   string // the file of exported traces
}

// collectorConfig writes traces, metrics and logs to files and a summary to
// the collector's log; it keeps the collector's own telemetry off, so that
// it claims no other port.
const collectorConfig = `receivers:
  otlp:
    protocols:
      http: {endpoint: "%[1]s"}
exporters:
  file/traces: {path: "%[2]s/traces.jsonl", flush_interval: 100ms}
  file/metrics: {path: "%[2]s/metrics.jsonl", flush_interval: 1s}
  file/logs: {path: "%[2]s/logs.jsonl", flush_interval: 1s}
  debug: {verbosity: basic}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [otlp], exporters: [file/traces, debug]}
    metrics: {receivers: [otlp], exporters: [file/metrics]}
    logs: {receivers: [otlp], exporters: [file/logs]}
`

// CollectorBinary returns the path of the collector binary ($SPOOL_OTELCOL_BIN,
// .spool/bin/spool-otelcol, or spool-otelcol on PATH), or an error saying
// how to build it.
func CollectorBinary() (string, error) { return newFinder().collector() }

// collector returns the path of the collector binary.
func (f finder) collector() (string, error) {
	var looked []string
	if p := f.getenv(collectorBinEnv); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, "$"+collectorBinEnv+"="+p)
	}
	if dir := f.minioBinDir(); dir != "" {
		p := filepath.Join(dir, "spool-otelcol")
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, p)
	}
	if p, ok := f.lookPath("spool-otelcol"); ok {
		return p, nil
	}
	looked = append(looked, "PATH")
	return "", &MissingBinaryError{Name: "spool-otelcol", Looked: looked,
		Install: fmt.Sprintf(`run "make otelcol" (the collector builder, about 2 minutes the first time), or set $%s`, collectorBinEnv)}
}

// startCollector starts the collector with its OTLP/HTTP receiver on
// 127.0.0.1:port (0 for a free port), writing into dir/otel.
func startCollector(ctx context.Context, f finder, dir string, port int, log *slog.Logger) (*collectorServer, error) {
	bin, err := f.collector()
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	data := filepath.Join(dir, "otel")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	if port, err = portOrFree(port); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := filepath.Join(data, "collector.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, collectorConfig, addr, data), 0o644); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Dir = data
	c := &collectorServer{endpoint: "http://" + addr, traces: filepath.Join(data, "traces.jsonl")}
	if c.proc, err = startProcess("collector", cmd, filepath.Join(dir, "collector.log"), syscall.SIGKILL, nil); err != nil {
		return nil, err
	}
	err = waitFor(ctx, "collector", collectorReadyTimeout, c.proc, func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("collector: %w", err)
	}
	log.Info("collector ready", "otlp", c.endpoint, "traces", c.traces, "bin", bin)
	return c, nil
}

// stop sends SIGTERM, so that the file exporters flush, and waits.
func (c *collectorServer) stop() error {
	if err := c.proc.stop(syscall.SIGTERM); err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	return nil
}
