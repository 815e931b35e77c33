package infer_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/realpart"
)

// TestCudaPlugin loads the cuda plugin built by `make -C libs/infer cuda`.
// On a machine without an NVIDIA GPU (CI) it must load and then refuse to
// open with the ordinary device error, never crash or report another fault;
// where the NVIDIA driver lists a GPU (/proc/driver/nvidia/gpus; not
// /dev/nvidiactl, which libcuda creates by itself when run as root) it must open and render what ref
// renders, a segment, an extension from prefix frames and a talking-head
// chain, within the
// plugin's tolerance (gpu-check.sh measures it fully).
func TestCudaPlugin(t *testing.T) {
	dir, _ := filepath.Abs("build")
	if _, err := os.Stat(filepath.Join(dir, "libspool_infer_cuda.so")); err != nil {
		realpart.Missing(t, "cuda plugin not built: run \"make -C libs/infer cuda\" (needs nvcc: \"make deps\" installs Debian's nvidia-cuda-toolkit)")
	}
	e, err := infer.Open("cuda", infer.WithPluginDir(dir))
	if gpus, _ := os.ReadDir("/proc/driver/nvidia/gpus"); len(gpus) == 0 {
		if err == nil {
			_ = e.Close()
			t.Fatal("cuda opened on a machine whose /proc/driver/nvidia/gpus lists no GPU")
		}
		if !errors.Is(err, infer.ErrDevice) || !strings.Contains(err.Error(), "backend cuda: cuda: no CUDA device: ") {
			t.Fatalf("without a GPU: %v; want infer.ErrDevice, \"cuda: no CUDA device: ...\"", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("with a GPU in /proc/driver/nvidia/gpus: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	if info := e.Info(); info.Backend != "cuda" {
		t.Fatalf("info %+v", info)
	}
	ref := open(t, "ref")
	got, want := run(t, e, req()), run(t, ref, req())
	within(t, "segment", got, want)
	// An extension from ref's last frames: the prefix encoder.
	ext := prefixReq(128, 72, 5, lastFrames(want, 5))
	within(t, "extension", run(t, e, ext), run(t, ref, ext))
	// A talking head: the mouth painted over reference frames, encoded.
	track := talkTrack(74)
	got1, want1 := run(t, e, talkReq(track, 0, 41, 8, nil)), run(t, ref, talkReq(track, 0, 41, 8, nil))
	within(t, "talking head", got1, want1)
	within(t, "talking head, segment 2", run(t, e, talkReq(track, 33, 41, 8, want1.tail)),
		run(t, ref, talkReq(track, 33, 41, 8, want1.tail)))
}

// within fails t unless got's frames are want's within 2 levels.
func within(t *testing.T, what string, got, want *collect) {
	t.Helper()
	if len(got.frames) != len(want.frames) {
		t.Fatalf("%s: %d frames, ref %d", what, len(got.frames), len(want.frames))
	}
	for i := range want.frames {
		for j, v := range want.frames[i] {
			if d := int(got.frames[i][j]) - int(v); d < -2 || d > 2 {
				t.Fatalf("%s: frame %d byte %d: %d, ref %d (tolerance 2)", what, i, j, got.frames[i][j], v)
			}
		}
	}
}
