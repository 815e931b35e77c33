package infer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/realpart"
)

// openTiny opens skyreels_df.py on the tiny SkyReels-V2 pipeline (real
// diffusers code, random weights; make tiny-model) through the python
// plugin, as a CPU worker slot opens the catalog's skyreels-v2-df-tiny.
func openTiny(t *testing.T) *infer.Engine {
	t.Helper()
	e, err := openSkyReels(t, tinyWeights(t), "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// tinyWeights is the tiny pipeline's folder (make tiny-model).
func tinyWeights(t *testing.T) string {
	t.Helper()
	weights, _ := filepath.Abs("../../.spool/models/skyreels-v2-df-tiny")
	if _, err := os.Stat(filepath.Join(weights, "model_index.json")); err != nil {
		realpart.Missing(t, "the tiny SkyReels-V2 pipeline is missing: run \"make tiny-model\"")
	}
	return weights
}

// openSkyReels opens skyreels_df.py on the folder weights with more
// engine parameters (k=v;...), closed at the test's end.
func openSkyReels(t *testing.T, weights, params string) (*infer.Engine, error) {
	t.Helper()
	dir, _ := filepath.Abs("build")
	if _, err := os.Stat(filepath.Join(dir, "libspool_infer_python.so")); err != nil {
		realpart.Missing(t, "python plugin not built: run \"make -C libs/infer python\" (after \"make venv\")")
	}
	py, _ := filepath.Abs("python")
	t.Setenv("HF_HUB_OFFLINE", "1")
	e, err := infer.Open("python", infer.WithPluginDir(dir), infer.WithModel("skyreels-v2-df-tiny"), infer.WithWeightsDir(weights),
		infer.WithParams("module=skyreels_df;path="+py+";shift=8;max_window=33;deterministic=1"+params))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, nil
}

func tinyReq() infer.Request {
	return infer.Request{Prompt: "a red fox running through snow", Seed: 11, Width: 128, Height: 64, Frames: 17, Steps: 4,
		Guidance: 5, TailFrames: 5, FPS: 24}
}

// TestPythonTinySkyReelsThroughTheEngine: the Go engine runs segments of the real
// pipeline through the plugin: a window gives its 17 frames after its
// steps and tail (2 latent frames of 16 channels at 8×16), the same bytes
// again for the same seed, a second segment conditioned on that tail, and
// segments from an image and from a video's last frames (prefix frames).
func TestPythonTinySkyReelsThroughTheEngine(t *testing.T) {
	e := openTiny(t)
	info := e.Info()
	if info.Backend != "python" || info.Model != "skyreels-v2-df-tiny" || info.LatentChannels != 16 || info.LatentScale != 8 ||
		info.TemporalScale != 4 || info.FrameAlign != 4 || !strings.Contains(info.ModelVersion, "skyreels-v2-df-tiny") {
		t.Fatalf("info %+v", info)
	}
	a := run(t, e, tinyReq())
	if strings.Join(a.order, ",") != "step,tail,frames" || a.steps != 4 || len(a.frames) != 17 || len(a.frames[0]) != 128*64*3 {
		t.Fatalf("order %v, %d steps, %d frames", a.order, a.steps, len(a.frames))
	}
	// The tail blob: a header and 2×16×8×16 float32 latents.
	if want := 2 * 16 * 8 * 16 * 4; len(a.tail) < want {
		t.Fatalf("tail of %d bytes, want at least the %d of its latents", len(a.tail), want)
	}
	b := run(t, e, tinyReq())
	for i := range a.sums {
		if a.sums[i] != b.sums[i] {
			t.Fatalf("frame %d differs between two runs of one seed", i)
		}
	}
	r2 := tinyReq()
	r2.Seed, r2.Overlap, r2.FirstFrame, r2.Cond = 12, 5, 12, a.tail
	if c := run(t, e, r2); len(c.frames) != 17 || len(c.tail) != len(a.tail) {
		t.Fatalf("conditioned segment: %d frames, tail %d bytes", len(c.frames), len(c.tail))
	}
	// Segments from media: an image (frame 0) and a video's last 5 frames
	// (before frame 0), here the first segment's, encoded by the VAE.
	for _, overlap := range []int{1, 5} {
		r3 := tinyReq()
		r3.Seed, r3.Overlap, r3.Prefix = 13, overlap, lastFrames(a, overlap)
		if overlap > 1 {
			r3.FirstFrame = -int64(overlap)
		}
		x, y := run(t, e, r3), run(t, e, r3)
		if len(x.frames) != 17 || len(x.tail) != len(a.tail) {
			t.Fatalf("%d prefix frames: %d frames, tail %d bytes", overlap, len(x.frames), len(x.tail))
		}
		for i := range x.sums {
			if x.sums[i] != y.sums[i] {
				t.Fatalf("%d prefix frames: frame %d differs between two runs of one seed", overlap, i)
			}
		}
	}
}

// cancelAt cancels its context at a denoise step.
type cancelAt struct {
	*collect
	step   int
	cancel context.CancelFunc
}

func (c *cancelAt) Step(step, steps int) error {
	if step == c.step {
		c.cancel()
	}
	return c.collect.Step(step, steps)
}

// TestPythonTinySkyReelsCancelAndTraceback: a cancel during the second denoise
// step ends the run cancelled after that step, before any frame, and the engine runs the
// next segment; a window longer than the model's (max_window 33) is refused
// by the module with its Python traceback in the error.
func TestPythonTinySkyReelsCancelAndTraceback(t *testing.T) {
	e := openTiny(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &cancelAt{collect: newCollect(), step: 2, cancel: cancel}
	r := tinyReq()
	r.Steps = 8
	// The binding raises the cancel flag in the step callback itself, so
	// the module stops right after step 2, however busy the machine.
	if err := e.Run(ctx, r, s); !errors.Is(err, infer.ErrCancelled) || len(s.frames) != 0 || s.steps != 2 {
		t.Fatalf("cancel at step 2: %v after %d steps and %d frames", err, s.steps, len(s.frames))
	}
	if c := run(t, e, tinyReq()); len(c.frames) != 17 {
		t.Fatalf("after the cancel: %d frames", len(c.frames))
	}
	long := tinyReq()
	long.Frames = 37
	err := e.Run(context.Background(), long, newCollect())
	if !errors.Is(err, infer.ErrBackend) || !strings.Contains(err.Error(), "Traceback") ||
		!strings.Contains(err.Error(), "skyreels_df.py") || !strings.Contains(err.Error(), "33") {
		t.Fatalf("a 37-frame window of a 33-frame model: %v", err)
	}
}

// TestPythonRandomSkyReelsFromConfigurations: a folder of the tiny
// pipeline's configurations alone (no weights) opens with init=random, its
// parts built with random weights, and runs a window through the engine;
// without init=random the module refuses the folder, naming the parameter.
func TestPythonRandomSkyReelsFromConfigurations(t *testing.T) {
	tiny := tinyWeights(t)
	configs := t.TempDir()
	for _, f := range []string{"model_index.json", "transformer/config.json", "vae/config.json", "text_encoder/config.json",
		"scheduler/scheduler_config.json"} {
		b, err := os.ReadFile(filepath.Join(tiny, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(configs, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(configs, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := openSkyReels(t, configs, ""); err == nil || !strings.Contains(err.Error(), "holds configurations only") ||
		!strings.Contains(err.Error(), "init=random") {
		t.Fatalf("a folder of configurations without init=random: %v", err)
	}
	e, err := openSkyReels(t, configs, ";init=random")
	if err != nil {
		t.Fatal(err)
	}
	if v := e.Info().ModelVersion; !strings.Contains(v, "random weights") {
		t.Fatalf("model_version %q does not say random weights", v)
	}
	if a := run(t, e, tinyReq()); a.steps != 4 || len(a.frames) != 17 || len(a.frames[0]) != 128*64*3 {
		t.Fatalf("%d steps, %d frames", a.steps, len(a.frames))
	}
}

// TestPythonTorchOnAnEngineThreadOfItsOwn: the interpreter is started by
// one engine, and torch is first imported by another, on the thread of its
// own that the binding gives every engine. pybind11 (torch) remembers the
// thread state it was imported on; the plugin keeps every thread's state
// for the process's life, so the engine's next calls on that thread find it
// alive (a state made and deleted per call crashed the second call).
func TestPythonTorchOnAnEngineThreadOfItsOwn(t *testing.T) {
	first := openPython(t, "spool_numpy_ref")
	run(t, first, pyReq())
	e := openTiny(t)
	for range 3 {
		if c := run(t, e, tinyReq()); len(c.frames) != 17 {
			t.Fatalf("%d frames", len(c.frames))
		}
	}
}
