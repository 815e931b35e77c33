package spoolctl

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spoolvideo/spool/libs/jobspec"
)

// engineFlags are the flags that choose the models and engines of
// `spoolctl dev` and `spoolctl render --local`, alike in both, as a
// worker's SPOOL_WORKER_* variables choose them: -backend and -model pick
// catalog models, -params, -plugin-dir and -models-dir set up their engines.
type engineFlags struct {
	backend, model, params, pluginDir, modelsDir *string
}

// pythonModules is the folder of the python backend's modules, relative to
// the repository root, which -params gets as path= for a python model.
const pythonModules = "libs/infer/python"

func addEngineFlags(fs *flag.FlagSet, what string) engineFlags {
	return engineFlags{
		backend: fs.String("backend", "", "inference backend (ref, sim, python or cuda) of the models "+what+" (as SPOOL_WORKER_BACKEND); with -model, the model must run on it"),
		model:   fs.String("model", "", "catalog model "+what+" (as SPOOL_WORKER_MODELS), e.g. skyreels-v2-df-tiny (make tiny-model)"),
		params:  fs.String("params", "", "backend parameters added to the catalog's for the model, key=value;key=value (as SPOOL_WORKER_BACKEND_PARAMS); a python model gets path="+pythonModules+" when they name no path"),
		pluginDir: fs.String("plugin-dir", envOr("SPOOL_INFER_PLUGIN_DIR", "libs/infer/build"),
			"where backend plugins live (as SPOOL_WORKER_PLUGIN_DIR; make -C libs/infer python builds the python plugin there)"),
		modelsDir: fs.String("models-dir", envOr("SPOOL_WORKER_MODELS_DIR", ".spool/models"),
			"folder of weights per model, named as the model (as SPOOL_WORKER_MODELS_DIR)"),
	}
}

// models resolves -backend and -model against the catalog: the named model
// (which must run on -backend when both are given), else every model of
// -backend, else none (nil: the caller's default).
func (f engineFlags) models(cat jobspec.Catalog) ([]string, error) {
	switch {
	case *f.model != "":
		m, ok := cat.Models[*f.model]
		if !ok {
			return nil, fmt.Errorf("-model %q is not in the catalog, which has %s", *f.model, strings.Join(cat.Names(), ", "))
		}
		if *f.backend != "" && m.Backend != *f.backend {
			return nil, fmt.Errorf("-model %s runs on backend %s, not on -backend %s", m.Name, m.Backend, *f.backend)
		}
		return []string{m.Name}, nil
	case *f.backend != "":
		names := cat.OfBackend(*f.backend)
		if len(names) == 0 {
			return nil, fmt.Errorf("-backend %q: no model of the catalog runs on it (backends: %s)", *f.backend, strings.Join(backendsOf(cat), ", "))
		}
		return names, nil
	}
	return nil, nil
}

func backendsOf(cat jobspec.Catalog) []string {
	var out []string
	for _, n := range cat.Names() {
		if b := cat.Models[n].Backend; !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// engineParams are -params, with path= the python modules' folder (made
// absolute) added when one of models runs on the python backend and the
// parameters name no path.
func (f engineFlags) engineParams(cat jobspec.Catalog, models []string) string {
	p := *f.params
	python := slices.ContainsFunc(models, func(n string) bool { return cat.Models[n].Backend == "python" })
	if !python || strings.Contains(";"+p, ";path=") {
		return p
	}
	dir, err := filepath.Abs(pythonModules)
	if err != nil {
		return p
	}
	if p != "" {
		return p + ";path=" + dir
	}
	return "path=" + dir
}

// dirs are -plugin-dir and -models-dir, absolute.
func (f engineFlags) dirs() (plugins, models string) {
	plugins, _ = filepath.Abs(*f.pluginDir)
	models, _ = filepath.Abs(*f.modelsDir)
	return plugins, models
}
