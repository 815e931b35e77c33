package dashboards_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/telemetry"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
	"github.com/spoolvideo/spool/services/worker/worker"
)

var tel *telemetry.Telemetry

func TestMain(m *testing.M) {
	var err error
	if tel, err = telemetry.Setup(context.Background(), "spool-dashboards-test", telemetry.WithPrometheus()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := devstacktest.Run(m)
	_ = tel.Shutdown(context.Background())
	os.Exit(code)
}

// exposed runs a job through the whole system, with a worker on two GPUs
// of an NVML mock (DGX H100), and returns the series names its /metrics
// endpoint serves.
func exposed(t *testing.T) map[string]bool {
	sys := systest.Start(t, 30*time.Second, 1)
	srv := dgxh100.New()
	for _, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 50}, nvml.SUCCESS }
		dev.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{Total: 80 << 30, Used: 20 << 30}, nvml.SUCCESS }
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 55, nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 400000, nvml.SUCCESS }
	}
	gpus, err := gpu.Open(gpu.WithLibrary(srv), gpu.WithVisibleDevices("0,1"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{ID: "gpu-node", Pool: systest.Pool, Models: systest.PoolModels, Slots: 1, Heartbeat: time.Second},
		sys.Bus, sys.Blob, gpus, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	sys.Run(t, w.Run)

	const job = "metered"
	sys.Submit(t, `{"id":"`+job+
		`","prompt":"a lantern","durationFrames":40,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":3,"fps":24,"pool":"`+
		systest.Pool+`"}`)
	sys.WaitSucceeded(t, job, 60*time.Second)
	prom := httptest.NewServer(tel.MetricsHandler())
	defer prom.Close()
	// The job's end is recorded in Postgres a moment before the stitcher
	// records its durations: read until they are there.
	var names map[string]bool
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		names = scrape(t, prom.URL+"/metrics")
		if (names["spool_job_duration_seconds_bucket"] && names["spool_stitch_finalize_duration_seconds_bucket"]) || time.Now().After(deadline) {
			return names
		}
	}
}

// scrape reads the metric names a Prometheus endpoint serves.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// metricName finds the names of the metric families spool's endpoints
// serve (ours, and the Go runtime's and process's) in a PromQL query.
var metricName = regexp.MustCompile(`\b(?:spool|go|process)_[a-zA-Z0-9_:]*`)

// queries collects every PromQL query of a dashboard: the panels' targets'
// expr and the template variables' queries, wherever they nest.
func queries(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && (k == "expr" || k == "query" || k == "definition") {
				*out = append(*out, s)
			} else if q, ok := e.(map[string]any); ok && k == "query" {
				if s, ok := q["query"].(string); ok {
					*out = append(*out, s)
				}
			} else {
				queries(e, out)
			}
		}
	case []any:
		for _, e := range x {
			queries(e, out)
		}
	}
}

// TestDashboardsQueryExportedMetrics: every metric named in every panel
// query of deploy/grafana/*.json is served by the system's /metrics
// endpoint; the five dashboards exist, each panel has a query, and uids
// are unique.
func TestDashboardsQueryExportedMetrics(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(systest.RepoRoot(t), "deploy", "grafana", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := exposed(t)
	var ours []string
	for n := range names {
		if strings.HasPrefix(n, "spool_") {
			ours = append(ours, n)
		}
	}
	sort.Strings(ours)
	t.Logf("spool series exported: %s", strings.Join(ours, " "))

	titles, uids := map[string]bool{}, map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string           `json:"uid"`
			Title  string           `json:"title"`
			Panels []map[string]any `json:"panels"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var all map[string]any
		_ = json.Unmarshal(raw, &all)
		base := filepath.Base(f)
		if d.UID == "" || uids[d.UID] != "" {
			t.Errorf("%s: uid %q missing or also in %s", base, d.UID, uids[d.UID])
		}
		uids[d.UID] = base
		titles[d.Title] = true
		if len(d.Panels) == 0 {
			t.Errorf("%s: no panels", base)
		}
		for _, p := range d.Panels {
			if p["type"] == "row" || p["type"] == "text" {
				continue
			}
			var qs []string
			queries(p, &qs)
			if len(qs) == 0 {
				t.Errorf("%s: panel %q has no query", base, p["title"])
			}
		}
		var qs []string
		queries(all, &qs)
		for _, q := range qs {
			for _, n := range metricName.FindAllString(q, -1) {
				if !names[n] {
					t.Errorf("%s: query %q names %s, which the code does not export", base, q, n)
				}
			}
		}
	}
	for _, want := range []string{"spool: jobs", "spool: pools and queues", "spool: segment phases", "spool: GPUs", "spool: errors"} {
		if !titles[want] {
			t.Errorf("no dashboard titled %q (have %v)", want, titles)
		}
	}
}
