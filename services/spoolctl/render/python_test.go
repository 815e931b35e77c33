package render_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/realpart"
	"github.com/spoolvideo/spool/services/spoolctl/render"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// tinyModel is the catalog's tiny SkyReels-V2 pipeline (make tiny-model).
const tinyModel = "skyreels-v2-df-tiny"

// pythonSetup is what a python worker of tinyModel needs, from the
// repository: the plugin built against the pinned environment, the module
// folder and the models folder. A missing part fails the test in CI,
// naming the make target that builds it.
type pythonSetup struct{ plugins, modules, models string }

func needPython(t *testing.T) pythonSetup {
	t.Helper()
	root, _ := filepath.Abs("../../..")
	s := pythonSetup{filepath.Join(root, "libs/infer/build"), filepath.Join(root, "libs/infer/python"), filepath.Join(root, ".spool/models")}
	for _, need := range []struct{ path, make string }{
		{filepath.Join(root, ".spool/venv/bin/python"), "make venv (the pinned torch and diffusers)"},
		{filepath.Join(s.plugins, "libspool_infer_python.so"), "make -C libs/infer python"},
		{filepath.Join(s.models, tinyModel, "model_index.json"), "make tiny-model"},
	} {
		if _, err := os.Stat(need.path); err != nil {
			realpart.Missing(t, "%s is missing: run \"%s\"", need.path, need.make)
		}
	}
	return s
}

// TestPythonWorkersEqualOracle: a chain job, an independent job, an image
// to video job and an extension of a video of the tiny SkyReels-V2 pipeline (real diffusers code, random weights) run on
// two spool-worker processes with SPOOL_WORKER_BACKEND=python, over the
// real NATS, Postgres and MinIO, and their videos decode to exactly the
// frames of `spoolctl render --local` with the same backend and model
// (framemd5). The workers run on the CPU, where the worker makes torch
// deterministic (deterministic algorithms, one thread per engine).
func TestPythonWorkersEqualOracle(t *testing.T) {
	py := needPython(t)
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	pyPool := "python-" + run
	sys := &system{systest.StartPools(t, 0, 0, jobspec.Pools{{Name: pyPool, Models: []string{tinyModel}}})}
	bin := devstacktest.Binary(t, "../../worker/cmd/spool-worker")
	for i := range 2 {
		startWorkerProcess(t, bin, fmt.Sprint(i), append(devstacktest.ServiceEnv(t, sys.Stack, bus.RoleWorker, pyPool, ""), fmt.Sprintf("SPOOL_WORKER_ID=py%d-%s", i, run),
			"SPOOL_WORKER_POOL="+pyPool, "SPOOL_WORKER_BACKEND=python", "SPOOL_WORKER_MODELS="+tinyModel,
			"SPOOL_WORKER_PLUGIN_DIR="+py.plugins, "SPOOL_WORKER_MODELS_DIR="+py.models,
			"SPOOL_WORKER_BACKEND_PARAMS=path="+py.modules, "HF_HUB_OFFLINE=1",
			"SPOOL_WORKER_HEARTBEAT=1s", "SPOOL_WORKER_REGISTER_EVERY=200ms", "SPOOL_LOG_LEVEL=warn")...)
	}
	// Media in: image to video, and the extension of a video kept before
	// the new frames (48 frames: 2 s resampled to 24 fps), in 29 new frames:
	// two segments each.
	video, image := makeMedia(t)
	vid := storeUpload(t, sys, "default", video, "video", 2)
	img := storeUpload(t, sys, "default", image, "image", 0)
	for _, c := range []struct {
		name, media string
		o           render.Options
		frames      int
	}{{"image", `"image":"` + img + `"`, render.Options{Image: image}, 29}, {"extend", `"video":"` + vid + `","includeInput":true`, render.Options{Video: video}, 48 + 29}} {
		id := "py-" + c.name + "-" + run
		spec := `{"id":"` + id + `","prompt":"a red fox running through snow",` + c.media + `,"durationFrames":29,` +
			`"model":"` + tinyModel + `","seed":5,"fps":24,"pool":"` + pyPool + `"}`
		sys.submit(t, spec)
		defer t.Run(c.name, func(t *testing.T) {
			c.o.Params, c.o.PluginDir, c.o.ModelsDir = "path="+py.modules, py.plugins, py.models
			sys.compareWith(t, id, spec, c.frames, c.o, 3*time.Minute)
		})
	}
	for _, mode := range []string{"MODE_CHAIN", "MODE_INDEPENDENT"} {
		id := "py-" + strings.ToLower(mode[5:]) + "-" + run
		// 41 frames in windows of 17 with 5 of overlap: four segments.
		spec := `{"id":"` + id + `","prompt":"a red fox running through snow","mode":"` + mode + `","durationFrames":41,` +
			`"model":"` + tinyModel + `","seed":5,"fps":24,"pool":"` + pyPool + `"}`
		sys.submit(t, spec)
		t.Run(mode, func(t *testing.T) {
			sys.compareWith(t, id, spec, 41, render.Options{Params: "path=" + py.modules, PluginDir: py.plugins, ModelsDir: py.models}, 3*time.Minute)
		})
	}
}
