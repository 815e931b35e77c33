package worker

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/jobspec"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// errNotServed marks a task for a model the worker has not loaded. It is
// permanent: the task is never run on another model, and its job fails
// with a message naming the model asked for and the models served.
var errNotServed = errors.New("model not served")

// servedModels resolves the models the worker loads: SPOOL_WORKER_MODELS,
// each on its catalog backend (SPOOL_WORKER_BACKEND, when also set, must be
// every one's); or else every catalog model of SPOOL_WORKER_BACKEND; or,
// when neither is set, every CPU model of the catalog, which the default
// pool serves (SPOOL_DISPATCHER_POOLS default:ref,ref-talk,sim).
func servedModels(cfg Config, cat jobspec.Catalog) ([]jobspec.Model, error) {
	names := cfg.Models
	switch {
	case len(names) > 0:
	case cfg.Backend != "":
		if names = cat.OfBackend(cfg.Backend); len(names) == 0 {
			return nil, fmt.Errorf("worker: no model of the catalog runs on backend %s (SPOOL_WORKER_BACKEND); the catalog has %s",
				cfg.Backend, describe(cat))
		}
	default:
		if names = cat.CPUModels(); len(names) == 0 {
			return nil, fmt.Errorf("worker: the catalog has no CPU model to serve by default; set SPOOL_WORKER_MODELS or SPOOL_WORKER_BACKEND (the catalog has %s)",
				describe(cat))
		}
	}
	var out []jobspec.Model
	for _, n := range names {
		m, ok := cat.Models[n]
		switch {
		case !ok:
			return nil, fmt.Errorf("worker: SPOOL_WORKER_MODELS: model %q is not in the catalog, which has %s", n, describe(cat))
		case cfg.Backend != "" && m.Backend != cfg.Backend:
			return nil, fmt.Errorf("worker: model %s runs on backend %s, not on SPOOL_WORKER_BACKEND %s", n, m.Backend, cfg.Backend)
		case slices.ContainsFunc(out, func(o jobspec.Model) bool { return o.Name == n }):
			return nil, fmt.Errorf("worker: SPOOL_WORKER_MODELS lists %s twice", n)
		}
		out = append(out, m)
	}
	if cfg.Weights != "" && cfg.ModelsDir != "" {
		return nil, fmt.Errorf("worker: set SPOOL_WORKER_WEIGHTS_DIR (one model's weights) or SPOOL_WORKER_MODELS_DIR (a folder per model), not both")
	}
	if cfg.Weights != "" && len(out) > 1 {
		return nil, fmt.Errorf("worker: SPOOL_WORKER_WEIGHTS_DIR holds one model's weights, and the worker loads %d models (%s): set SPOOL_WORKER_MODELS to one",
			len(out), strings.Join(modelNames(out), ", "))
	}
	return out, nil
}

// describe lists the catalog's models with their backends.
func describe(cat jobspec.Catalog) string {
	var parts []string
	for _, n := range cat.Names() {
		parts = append(parts, n+" ("+cat.Models[n].Backend+")")
	}
	return strings.Join(parts, ", ")
}

func modelNames(ms []jobspec.Model) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// engineOptions open model m's engine: its name, the catalog's parameters
// for it (and its shift; for a python model its max_window too, and, on the
// CPU, deterministic=1 so that a segment's bytes do not depend on the run),
// then the worker's own parameters, which may add to the catalog's but not
// change them, and its weights: SPOOL_WORKER_WEIGHTS_DIR, or the model's
// folder of SPOOL_WORKER_MODELS_DIR.
func engineOptions(cfg Config, m jobspec.Model, onCPU bool) ([]infer.Option, error) {
	fixed := maps.Clone(m.Params)
	if m.Shift > 0 {
		fixed["shift"] = strconv.FormatFloat(float64(m.Shift), 'g', -1, 32)
	}
	if m.Backend == "python" {
		fixed["max_window"] = strconv.Itoa(m.MaxWindow)
		if onCPU {
			fixed["deterministic"] = "1"
		}
	}
	weights, err := weightsDir(cfg, m)
	if err != nil {
		return nil, err
	}
	for _, item := range strings.Split(cfg.Params, ";") {
		if k, _, _ := strings.Cut(item, "="); k != "" && fixed[k] != "" {
			return nil, fmt.Errorf("worker: SPOOL_WORKER_BACKEND_PARAMS sets %s, which the catalog fixes for model %s (%s=%s)", k, m.Name, k, fixed[k])
		}
	}
	return []infer.Option{infer.WithModel(m.Name), infer.WithParamMap(fixed), infer.WithParams(cfg.Params),
		infer.WithPluginDir(cfg.PluginDir), infer.WithWeightsDir(weights)}, nil
}

// weightsDir is where model m's engine loads its weights from:
// SPOOL_WORKER_WEIGHTS_DIR, else the folder named as the model in
// SPOOL_WORKER_MODELS_DIR (which a python model must have: a worker never
// falls back to downloading), else none.
func weightsDir(cfg Config, m jobspec.Model) (string, error) {
	if cfg.Weights != "" || cfg.ModelsDir == "" {
		return cfg.Weights, nil
	}
	dir := filepath.Join(cfg.ModelsDir, m.Name)
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir, nil
	}
	if m.Backend == "python" {
		return "", fmt.Errorf("worker: SPOOL_WORKER_MODELS_DIR %s has no folder %s for model %s (put its weights there; deploy/README.md says how)",
			cfg.ModelsDir, m.Name, m.Name)
	}
	return "", nil
}

// OpenEngines opens an engine of every model for a slot (on device, but
// the CPU for a ref model or when device is nil), with the catalog's parameters of each and cfg's
// Params, PluginDir and Weights, and checks that each engine is the model
// the catalog describes. The oracle (spoolctl render --local) opens its
// engine the same way. The engines are the caller's to close.
func OpenEngines(cfg Config, models []jobspec.Model, device *gpu.GPU) (map[string]*infer.Engine, error) {
	engines := map[string]*infer.Engine{}
	closeAll := func() {
		for _, e := range engines {
			_ = e.Close()
		}
	}
	onDevice := func(m jobspec.Model) bool { return device != nil && m.Backend != "ref" } // ref runs on the CPU only
	if device != nil {
		var need uint64
		for _, m := range models {
			if onDevice(m) {
				need += m.GPUMemoryMiB
			}
		}
		if have := device.MemoryTotal >> 20; need > have {
			return nil, fmt.Errorf("GPU %d (%s) has %d MiB and models %s need %d MiB (the catalog's gpu_memory_mib): load fewer (SPOOL_WORKER_MODELS)",
				device.Index, device.Name, have, strings.Join(modelNames(models), ", "), need)
		}
	}
	for _, m := range models {
		opts, err := engineOptions(cfg, m, !onDevice(m))
		if err != nil {
			closeAll()
			return nil, err
		}
		if onDevice(m) {
			opts = append(opts, infer.WithDevice(device.Index))
		}
		e, err := infer.Open(m.Backend, opts...)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("model %s (backend %s): %w", m.Name, m.Backend, err)
		}
		engines[m.Name] = e
		info := e.Info()
		switch {
		case info.Model != m.Name:
			closeAll()
			return nil, fmt.Errorf("model %s: its %s engine reports model %q", m.Name, m.Backend, info.Model)
		case info.FrameAlign > 1 && m.Align%info.FrameAlign != 0:
			closeAll()
			return nil, fmt.Errorf("model %s: the catalog's frame_align %d does not meet its engine's %d", m.Name, m.Align, info.FrameAlign)
		}
	}
	return engines, nil
}

// engine is the slot's engine of model, or nil when the worker did not
// load it.
func (s *slot) engine(model string) *infer.Engine { return s.engines[model] }

// backends lists, sorted, the backends of the models the worker serves.
func (w *Worker) backends() []string {
	var out []string
	for _, s := range w.slots {
		for _, e := range s.engines {
			if b := e.Info().Backend; !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Models lists, sorted, the models the worker serves.
func (w *Worker) Models() []string {
	if len(w.slots) == 0 {
		return nil
	}
	return w.slots[0].models()
}

// models lists the models the slot serves, sorted.
func (s *slot) models() []string { return slices.Sorted(maps.Keys(s.engines)) }

// serve returns the engine of the task's model, or a permanent error
// naming the model asked for and the models this worker serves: a task is
// run by exactly its model, never another.
func (w *Worker) serve(s *slot, t *spoolv1.SegmentTask) (*infer.Engine, error) {
	if e := s.engine(t.Model); e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("%w: %w: the task asks for model %q and worker %s (pool %s) serves only %s; every worker of a pool must serve all the models the pool declares",
		errPermanent, errNotServed, t.Model, w.cfg.ID, w.cfg.Pool, strings.Join(s.models(), ", "))
}
