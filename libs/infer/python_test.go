package infer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/plan"
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

// TestPythonGetsAudioAndReference: the request's audio samples and
// reference frames reach the module intact (numpy float32 [n] and uint8
// [frames, H, W, 3], with audio_rate): spool_media_echo hands each
// reference frame back with the SHA-256 of the frame's own samples, which
// it slices by spool's sample arithmetic, the rate and the sample count in
// its first 44 bytes. Without them the module gets None and 0.
func TestPythonGetsAudioAndReference(t *testing.T) {
	e := openPython(t, "spool_media_echo")
	const fps, rate, first, frames = 24, 22050, -3, 9 // an extension's segment: frames -3..5
	lo, hi := plan.Samples(first, first+frames, fps, rate)
	audio := make([]float32, hi-lo)
	for i := range audio { // every bit pattern matters: signs, -0, subnormals, extremes
		audio[i] = math.Float32frombits(uint32(i) * 2654435761 % 0x7f800000)
		if i%2 == 1 {
			audio[i] = -audio[i]
		}
	}
	audio[3] = float32(math.Copysign(0, -1))
	r := pyReq()
	r.Frames, r.FirstFrame, r.FPS, r.Audio, r.AudioRate = frames, first, fps, audio, rate
	r.Reference = make([]byte, frames*r.Width*r.Height*3)
	for i := range r.Reference {
		r.Reference[i] = byte(i*7 + i/5)
	}
	r.Prefix, r.Overlap = r.Reference[:3*r.Width*r.Height*3], 3 // not echoed; it rides along
	c := run(t, e, r)
	fb := r.Width * r.Height * 3
	for i, f := range c.frames {
		a, b := plan.Samples(first+int64(i), first+int64(i)+1, fps, rate)
		own := make([]byte, 0, 4*(b-a))
		for _, s := range audio[a-lo : b-lo] {
			own = binary.LittleEndian.AppendUint32(own, math.Float32bits(s))
		}
		sum := sha256.Sum256(own)
		head := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint32(sum[:], rate), uint64(len(audio)))
		if !bytes.Equal(f[:44], head) {
			t.Fatalf("frame %d: the module saw other samples, rate or count: % x, want % x", i, f[:44], head)
		}
		if !bytes.Equal(f[44:], r.Reference[i*fb+44:(i+1)*fb]) {
			t.Fatalf("frame %d: the module saw another reference frame", i)
		}
	}
	r.Audio, r.AudioRate, r.Reference = nil, 0, nil
	c = run(t, e, r)
	if sum := sha256.Sum256(nil); !bytes.Equal(c.frames[0][:44], append(sum[:], make([]byte, 12)...)) {
		t.Fatalf("without media: % x", c.frames[0][:44])
	}
	// A module that cannot use them says so, as skyreels_df does.
	r.Audio, r.AudioRate = audio, rate
	err := openPython(t, "spool_numpy_ref").Run(context.Background(), r, newCollect())
	if !errors.Is(err, infer.ErrBackend) || !strings.Contains(err.Error(), "spool_numpy_ref: the request carries audio") {
		t.Fatalf("spool_numpy_ref with audio: %v", err)
	}
}
