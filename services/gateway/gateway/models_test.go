package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// routedAPI is the gateway over a system whose CPU pool (as spoolctl
// dev's: ref and sim) has one ref-only worker, and whose GPU pool for the
// 14B SkyReels-V2 model has none (it would scale from zero).
func routedAPI(t *testing.T, cpu, gpu string) *httptest.Server {
	t.Helper()
	return apiOver(t, cpu+":ref,sim;"+gpu+":skyreels-v2-df-14b-720p", worker.Config{ID: "ref-only-" + cpu, Pool: cpu, Backend: "ref",
		Models: []string{"ref"}, Slots: 1, Heartbeat: time.Second, Register: 100 * time.Millisecond})
}

// TestModelRouting: a job gets exactly the model it asked for, or a clear
// error. The request (the 540p SkyReels-V2 model against ref-only
// workers) is refused at submission; a model and pool that do not match
// are refused naming both; a model no live worker serves waits, saying
// for which pool; a job that ran names the model and version that made it.
func TestModelRouting(t *testing.T) {
	cpu, gpu := "routing-cpu", "routing-h100"
	srv := routedAPI(t, cpu, gpu)
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)

	r, v := call(t, srv, "POST", "/generate", `{"id":"sky1-`+suffix+`","prompt":"x","durationS":2,"model":"skyreels-v2-df-1.3b-540p"}`, true)
	if r.StatusCode != 400 || v["code"] != "invalid_argument" || v["field"] != "model" ||
		!strings.Contains(v["message"].(string), `"skyreels-v2-df-1.3b-540p" is not allowed; allowed: a model that a pool serves: ref, sim, skyreels-v2-df-14b-720p`) {
		t.Fatalf("a model no pool serves: %d %v", r.StatusCode, v)
	}
	r, v = call(t, srv, "POST", "/generate", `{"prompt":"x","durationS":2,"model":"skyreels-v2-df-14b-720p","pool":"`+cpu+`"}`, true)
	if r.StatusCode != 400 || v["field"] != "pool" || !strings.Contains(v["message"].(string),
		"a pool that serves model skyreels-v2-df-14b-720p (pool "+cpu+" serves ref, sim; it is served by "+gpu+")") {
		t.Fatalf("a pool that does not serve the model: %d %v", r.StatusCode, v)
	}
	r, v = call(t, srv, "POST", "/generate", `{"prompt":"x","durationS":2,"model":"skyreels-v2-df-14b-720p","resolution":"RESOLUTION_540P"}`, true)
	if r.StatusCode != 400 || v["field"] != "resolution" || !strings.Contains(v["message"].(string), "720p (1280x720)") {
		t.Fatalf("a resolution the model does not have: %d %v", r.StatusCode, v)
	}

	// Routed to the GPU pool, which has no worker: accepted, and waiting.
	waiting := "big-" + suffix
	if r, v := call(t, srv, "POST", "/generate", `{"id":"`+waiting+`","prompt":"x","durationS":2,"model":"skyreels-v2-df-14b-720p"}`, true); r.StatusCode != 202 {
		t.Fatalf("a served model: %d %v", r.StatusCode, v)
	}
	r, v = call(t, srv, "GET", "/status/"+waiting, "", true)
	if r.StatusCode != 200 || v["pool"] != gpu || v["model"] != "skyreels-v2-df-14b-720p" || v["width"] != float64(1280) ||
		v["waiting"] != "waiting for a worker of pool "+gpu+": none is registered (a pool may scale up from zero)" {
		t.Fatalf("a job for a pool without workers: %d %v", r.StatusCode, v)
	}
	defer call(t, srv, "POST", "/jobs/"+waiting+"/cancel", "", true)

	// The models, their defaults per resolution, the pools and their workers.
	var info struct {
		Catalog string `json:"catalog"`
		Models  []struct {
			Name, Backend     string
			DefaultResolution string `json:"default_resolution"`
			MaxWindow         int    `json:"max_window"`
			GPUMemoryMiB      int    `json:"gpu_memory_mib"`
			StepTimeMS        int    `json:"step_time_ms"`
			Resolutions       []struct {
				Name                           string
				Width, Height, Window, Overlap int
			}
			Pools []string
		}
		Pools []struct {
			Name            string
			Models, Workers []string
		}
		Workers []struct {
			ID, Pool      string
			Models, Lacks []string
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		getJSON(t, srv, "/models/info", &info)
		if len(info.Pools) == 2 && len(info.Pools[0].Workers) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if info.Catalog != "shipped" || len(info.Models) != len(jobspec.DefaultCatalog().Models) || len(info.Pools) != 2 {
		t.Fatalf("models/info: %+v", info)
	}
	for _, m := range info.Models {
		switch m.Name {
		case "skyreels-v2-df-1.3b-540p":
			if m.Backend != "python" || m.DefaultResolution != "540p" || m.MaxWindow != 97 || m.GPUMemoryMiB == 0 || m.StepTimeMS != 2000 ||
				len(m.Resolutions) == 0 || m.Resolutions[0].Width != 960 || m.Resolutions[0].Height != 544 ||
				m.Resolutions[0].Window != 97 || m.Resolutions[0].Overlap != 17 || len(m.Pools) != 0 {
				t.Errorf("%+v", m)
			}
		case "skyreels-v2-df-14b-720p":
			if m.DefaultResolution != "720p" || m.Resolutions[0].Window != 121 || m.Resolutions[0].Overlap != 37 ||
				len(m.Pools) != 1 || m.Pools[0] != gpu {
				t.Errorf("%+v", m)
			}
		case "ref":
			if m.Backend != "ref" || len(m.Pools) != 1 || m.Pools[0] != cpu {
				t.Errorf("%+v", m)
			}
		}
	}
	if p := info.Pools[0]; p.Name != cpu || strings.Join(p.Models, ",") != "ref,sim" || len(p.Workers) != 1 || p.Workers[0] != "ref-only-"+cpu {
		t.Errorf("pool %+v", p)
	}
	if p := info.Pools[1]; p.Name != gpu || len(p.Workers) != 0 {
		t.Errorf("pool %+v", p)
	}
	for _, w := range info.Workers {
		if w.ID == "ref-only-"+cpu && (strings.Join(w.Models, ",") != "ref" || strings.Join(w.Lacks, ",") != "sim") {
			t.Errorf("worker %+v: it lacks sim, which its pool serves", w)
		}
	}

	// A job that ran names the model and version that made it.
	done := "ran-" + suffix
	if r, v := call(t, srv, "POST", "/generate", `{"id":"`+done+`","prompt":"a lighthouse","durationFrames":20,"windowFrames":13,`+
		`"overlapFrames":4,"width":96,"height":64,"steps":2}`, true); r.StatusCode != 202 {
		t.Fatalf("a ref job: %d %v", r.StatusCode, v)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, v = call(t, srv, "GET", "/status/"+done, "", true)
		if v["state"] == "succeeded" || v["state"] == "failed" || time.Now().After(deadline) {
			break
		}
	}
	ran, _ := v["ran"].([]any)
	if v["state"] != "succeeded" || v["pool"] != cpu || len(ran) != 1 || v["waiting"] != nil {
		t.Fatalf("status after the run: %v", v)
	}
	if m := ran[0].(map[string]any); m["model"] != "ref" || m["backend"] != "ref" || m["version"] == "" || m["segments"] != float64(2) {
		t.Fatalf("ran %v", m)
	}
}

// getJSON decodes the body of an authorised GET of path into out.
func getJSON(t *testing.T, srv *httptest.Server, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
}
