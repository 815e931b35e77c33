package worker_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestTaskOfAModelNotLoaded: a worker that did not load a task's model
// never runs it on another: the attempt fails PERMANENT naming the model
// asked for and the models served, and the job fails with that message,
// at once (no retry). The pool declares ref and sim, and its one worker
// loaded only ref: a misconfiguration, made loud.
func TestTaskOfAModelNotLoaded(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	e.startWorkerOf(t, 1, "ref")
	ctx := context.Background()
	id := e.submit(t, `{"id":"wrong-model-`+e.pool[:4]+`","prompt":"x","durationFrames":9,"windowFrames":9,"overlapFrames":4,`+
		`"model":"sim","width":64,"height":64,"steps":2,"fps":24,"pool":"`+e.pool+`"}`)
	var j store.Job
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		j, _ = e.store.GetJob(ctx, id)
		if j.State.Terminal() || time.Now().After(deadline) {
			break
		}
	}
	want := `asks for model "sim" and worker w-` + e.pool + ` (pool ` + e.pool + `) serves only ref`
	if j.State != store.JobFailed || j.ErrorCode != "invalid_argument" || !strings.Contains(j.ErrorMessage, want) ||
		!strings.Contains(j.ErrorMessage, "PERMANENT") {
		t.Fatalf("job %s: %s %s %q; want failed, naming %q", id, j.State, j.ErrorCode, j.ErrorMessage, want)
	}
	a, err := e.store.ListAttempts(ctx, id, 0)
	if err != nil || len(a) != 1 || a[0].Outcome != store.OutcomeFailed || a[0].ErrorClass != spoolv1.ErrorClass_ERROR_CLASS_PERMANENT.String() ||
		!strings.Contains(a[0].ErrorMsg, want) || a[0].Worker.Model != "" {
		t.Fatalf("attempts %+v, %v: want one PERMANENT failure run by no model", a, err)
	}
}

// TestServedModels: what a worker loads comes from the catalog, and a
// configuration that would run a model other than the one asked for, or
// one the GPU cannot hold, stops the worker at start-up with the reason.
func TestServedModels(t *testing.T) {
	catalog := filepath.Join(t.TempDir(), "catalog.yaml")
	model := func(name, backend string, params string, gpuMiB int) string {
		return `  ` + name + `:
    description: a test model
    backend: ` + backend + `
    params: {` + params + `}
    frame_align: 1
    max_window: 33
    steps: 4
    guidance: 5
    shift: 0
    fps: 24
    gpu_memory_mib: ` + strconv.Itoa(gpuMiB) + `
    audio_sample_rate: 0
    talking_head: false
    step_time: 1s
    default_resolution: small
    any_size: true
    resolutions:
      - {name: small, width: 64, height: 64, window: 9, overlap: 4}
`
	}
	doc := "models:\n" + model("tiny-sim", "sim", "step_ms: '1'", 0) + model("huge-sim", "sim", "", 100000) + model("ref", "ref", "", 0)
	if err := os.WriteFile(catalog, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	gpus, err := gpu.Open(gpu.WithLibrary(dgxh100.New()), gpu.WithVisibleDevices("0"))
	if err != nil {
		t.Fatal(err)
	}
	// err is part of the error New must give, or, when it succeeds, the
	// models the worker serves.
	cases := []struct {
		name string
		cfg  worker.Config
		gpus bool
		err  string
	}{
		{"the backend's models", worker.Config{Backend: "sim"}, false, "huge-sim, tiny-sim"},
		{"the CPU models", worker.Config{}, false, "ref, tiny-sim"},
		{"named models", worker.Config{Backend: "sim", Models: []string{"tiny-sim"}}, false, "tiny-sim"},
		{"both backends", worker.Config{Models: []string{"tiny-sim", "ref"}}, false, "ref, tiny-sim"},
		{"not in the catalog", worker.Config{Models: []string{"skyreels-v2-df-14b-720p"}}, false,
			`model "skyreels-v2-df-14b-720p" is not in the catalog, which has huge-sim (sim), ref (ref), tiny-sim (sim)`},
		{"another backend", worker.Config{Backend: "ref", Models: []string{"tiny-sim"}}, false, "model tiny-sim runs on backend sim, not on SPOOL_WORKER_BACKEND ref"},
		{"no model of the backend", worker.Config{Backend: "python"}, false, "no model of the catalog runs on backend python"},
		{"twice", worker.Config{Models: []string{"ref", "ref"}}, false, "lists ref twice"},
		{"a fixed parameter", worker.Config{Models: []string{"tiny-sim"}, Params: "step_ms=50"}, false,
			"SPOOL_WORKER_BACKEND_PARAMS sets step_ms, which the catalog fixes for model tiny-sim (step_ms=1)"},
		{"one weights dir, two models", worker.Config{Models: []string{"tiny-sim", "ref"}, Weights: "/w"}, false, "holds one model's weights"},
		{"a weights dir and a models dir", worker.Config{Models: []string{"ref"}, Weights: "/w", ModelsDir: "/m"}, false,
			"set SPOOL_WORKER_WEIGHTS_DIR (one model's weights) or SPOOL_WORKER_MODELS_DIR (a folder per model), not both"},
		{"too big for the GPU", worker.Config{Models: []string{"huge-sim"}}, true, "MiB and models huge-sim need 100000 MiB (the catalog's gpu_memory_mib)"},
		{"fits the GPU", worker.Config{Models: []string{"tiny-sim"}}, true, "tiny-sim"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Pool, c.cfg.Slots, c.cfg.Heartbeat, c.cfg.Catalog = "p", 1, time.Second, config.Catalog{File: catalog}
			var g *gpu.Manager
			if c.gpus {
				g = gpus
			}
			w, err := worker.New(c.cfg, nil, nil, g, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if w != nil {
				defer w.Close()
				if got := strings.Join(w.Models(), ", "); got != c.err {
					t.Fatalf("serves %s, want %s", got, c.err)
				}
				return
			}
			if !strings.Contains(err.Error(), c.err) {
				t.Fatalf("got %v, want %q", err, c.err)
			}
		})
	}
}
