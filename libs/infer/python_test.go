package infer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/realpart"
)

// openPython opens the python plugin built by `make -C libs/infer python`.
// A missing plugin fails the test: it never skips in CI.
func openPython(t *testing.T, module string) *infer.Engine {
	t.Helper()
	dir, _ := filepath.Abs("build")
	if _, err := os.Stat(filepath.Join(dir, "libspool_infer_python.so")); err != nil {
		realpart.Missing(t, "python plugin not built: run \"make -C libs/infer python\" (needs Debian's python3-dev and python3-numpy)")
	}
	py, _ := filepath.Abs("python")
	tests, _ := filepath.Abs("python/tests")
	e, err := infer.Open("python", infer.WithPluginDir(dir), infer.WithParams("module="+module+";path="+py+":"+tests))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func pyReq() infer.Request {
	return infer.Request{Prompt: "a fox in snow", Seed: 3, Width: 64, Height: 48, Frames: 9, Steps: 4, Guidance: 5, TailFrames: 3}
}

func TestPythonChainIsDeterministicAndSeamless(t *testing.T) {
	e := openPython(t, "spool_numpy_ref")
	if info := e.Info(); info.Backend != "python" || info.LatentChannels != 4 || info.ModelVersion != "numpy-ref-1" {
		t.Fatalf("info %+v", info)
	}
	a, b := run(t, e, pyReq()), run(t, e, pyReq())
	if strings.Join(a.order, ",") != "step,tail,frames" || len(a.frames) != 9 {
		t.Fatalf("order %v, %d frames", a.order, len(a.frames))
	}
	for i := range a.sums {
		if a.sums[i] != b.sums[i] {
			t.Fatalf("frame %d differs between runs", i)
		}
	}
	r2 := pyReq()
	r2.Seed, r2.Overlap, r2.FirstFrame, r2.Cond = 4, 3, 6, a.tail
	c := run(t, e, r2)
	for i := 0; i < 3; i++ {
		if !bytes.Equal(c.frames[i], a.frames[6+i]) {
			t.Fatalf("segment 2 frame %d differs from segment 1 frame %d", i, 6+i)
		}
	}
}

// TestPythonPrefixFramesComeBack: prefix frames reach the module (numpy
// uint8, a negative FirstFrame for an extension), and spool_numpy_ref,
// whose encoder inverts its decoder, gives them back within a level.
func TestPythonPrefixFramesComeBack(t *testing.T) {
	e := openPython(t, "spool_numpy_ref")
	a := run(t, e, pyReq())
	r := pyReq()
	r.Seed, r.Overlap, r.FirstFrame, r.Prefix = 4, 3, -3, lastFrames(a, 3)
	c := run(t, e, r)
	if len(c.frames) != r.Frames {
		t.Fatalf("%d frames, want %d", len(c.frames), r.Frames)
	}
	if _, worst := meanAbs(bytes.Join(c.frames[:3], nil), r.Prefix); worst > 1 {
		t.Fatalf("the prefix frames come back %d levels off", worst)
	}
	r.Cond = a.tail
	if err := e.Run(context.Background(), r, newCollect()); !errors.Is(err, infer.ErrInvalidRequest) {
		t.Fatalf("cond and prefix: %v", err)
	}
}

func TestPythonExceptionCarriesTraceback(t *testing.T) {
	e := openPython(t, "spool_raises")
	err := e.Run(context.Background(), pyReq(), newCollect())
	if !errors.Is(err, infer.ErrBackend) || !strings.Contains(err.Error(), "Traceback") ||
		!strings.Contains(err.Error(), "ran out of ideas at frame 9") || !strings.Contains(err.Error(), "_inner") {
		t.Fatalf("error %v", err)
	}
}

func TestPythonCancelAndMissingModule(t *testing.T) {
	e := openPython(t, "spool_numpy_ref")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx, pyReq(), newCollect()); !errors.Is(err, infer.ErrCancelled) {
		t.Fatalf("cancelled before: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	c := newCollect()
	c.failAt = 2
	if err := e.Run(ctx, pyReq(), c); !errors.Is(err, infer.ErrAborted) || len(c.frames) != 2 {
		t.Fatalf("abort: %v, %d frames", err, len(c.frames))
	}
	r := pyReq()
	r.Steps = 500
	time.AfterFunc(50*time.Millisecond, cancel)
	r.Width, r.Height, r.Frames = 320, 240, 60
	if err := e.Run(ctx, r, newCollect()); !errors.Is(err, infer.ErrCancelled) {
		t.Fatalf("cancel mid-run: %v", err)
	}
	dir, _ := filepath.Abs("build")
	if _, err := infer.Open("python", infer.WithPluginDir(dir), infer.WithParams("module=no_such_module")); !errors.Is(err, infer.ErrBackendNotFound) ||
		!strings.Contains(err.Error(), "No module named") {
		t.Fatalf("missing module: %v", err)
	}
	if _, err := infer.Open("python", infer.WithPluginDir(dir)); !errors.Is(err, infer.ErrInvalidRequest) {
		t.Fatalf("no module param: %v", err)
	}
}

// TestPythonSleepOutlivesCancel: a module blocked in time.sleep does not see
// the cancel flag, which the plugin reads only inside io calls; the run
// returns only when the sleep ends, cancelled. This is the engine that does
// not return after cancel, which the worker's stall watchdog gives up on.
func TestPythonSleepOutlivesCancel(t *testing.T) {
	e := openPython(t, "spool_hangs")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r := pyReq()
	r.Prompt = "sleep 1.5"
	start := time.Now()
	err := e.Run(ctx, r, newCollect())
	if took := time.Since(start); !errors.Is(err, infer.ErrCancelled) || took < 1500*time.Millisecond {
		t.Fatalf("run: %v after %v; want cancelled, and not before the 1.5 s sleep ended", err, took)
	}
	r.Prompt = "sleep 0"
	if c := run(t, e, r); len(c.frames) != r.Frames {
		t.Fatalf("after the sleep: %d frames", len(c.frames))
	}
}

// The plugin embeds the environment it was built against (make venv's
// .spool/venv by default): sys.prefix is that venv, numpy comes from it, and
// sys.path holds nothing of Debian's dist-packages, the user's site
// directory or PYTHONPATH.
func TestPythonEmbedsItsEnvironment(t *testing.T) {
	venv, err := filepath.Abs("../../.spool/venv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(venv, "bin", "python")); err != nil {
		realpart.Missing(t, "the python environment is missing: run \"make venv\" (or \"make deps\")")
	}
	e := openPython(t, "spool_environment")
	err = e.Run(context.Background(), pyReq(), newCollect())
	msg := fmt.Sprint(err)
	if !strings.Contains(msg, "prefix="+venv+" ") || !strings.Contains(msg, "numpy="+venv+"/lib/") ||
		!strings.Contains(msg, "foreign=[]") {
		t.Fatalf("the embedded interpreter is not %s alone: %v", venv, err)
	}
}
