package bench_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/bench"
)

func TestMergeKeepsOtherBenchmarks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench", "results.json")
	if err := bench.Merge(path, "infer", map[string]float64{"sim_call_us": 3}); err != nil {
		t.Fatal(err)
	}
	if err := bench.Merge(path, "handoff", map[string]float64{"p50_ms": 1.5}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var doc map[string]map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["infer"]["sim_call_us"] != 3.0 || doc["handoff"]["p50_ms"] != 1.5 || doc["machine"]["cpus"].(float64) < 1 {
		t.Fatalf("results %s", data)
	}
	if err := os.WriteFile(path, []byte("[1]"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bench.Merge(path, "x", 1); err == nil {
		t.Fatal("a non-object results file was overwritten")
	}
	var buf bytes.Buffer
	bench.Print(&buf, "infer", []bench.Row{{"sim call", "3.0", "µs", ""}})
	if !strings.Contains(buf.String(), "sim call") {
		t.Fatal(buf.String())
	}
}

func TestCPUProfile(t *testing.T) {
	stop, err := bench.CPUProfile("")
	if err != nil || stop() != nil {
		t.Fatalf("no path: %v", err)
	}
	path := filepath.Join(t.TempDir(), "cpu.prof")
	if stop, err = bench.CPUProfile(path); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1e6; i++ { // some work to sample
		_ = fmt.Sprint(i)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("profile %v, %v", st, err)
	}
	if _, err := bench.CPUProfile(filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof")); err == nil {
		t.Fatal("a profile into a missing directory did not fail")
	}
}
