// Package infer is spool's inference library: a C ABI (include/spool_infer.h)
// with built-in ref and sim backends, python and cuda plugins loaded with
// dlopen, and this Go binding. It is the only package of the tree that
// imports "C".
//
// An Engine is opened once per worker slot and stays warm. Run generates one
// segment: progress per denoise step, the tail state as soon as denoising
// ends, then the decoded frames one at a time, all through a Sink. An Engine
// is used by one goroutine at a time (Run serialises calls); open one engine
// per slot for parallelism, or give a CPU engine WithThreads.
//
// A segment starts from nothing, from the previous segment's tail state
// (Request.Cond: a chain), or from media (Request.Prefix: RGB frames of an
// image or of an input video's end, which the backend encodes into its
// latent space). An audio-driven model also gets the segment's own audio
// samples (Request.Audio at Request.AudioRate), and a talking head the
// reference frames it animates (Request.Reference); both reach the engine
// without a copy.
//
// Frames reach the Sink without a copy: Frame.RGB is the engine's own buffer,
// valid only during the call. The C callbacks reach the Go sink through a
// runtime/cgo.Handle, and a Run allocates nothing on the Go heap per frame.
//
// Plugins (libspool_infer_<backend>.so) are looked for in WithPluginDir, then
// $SPOOL_INFER_PLUGIN_DIR, then the running program's directory; one found
// nowhere is ErrBackendNotFound, with a message naming the file, the
// directories searched and the make target that builds it.
//
// Backends:
//   - ref: deterministic CPU latent "diffusion" with the structure of a real
//     model; behind the oracle, the tests and the demo. Given reference
//     frames it is a talking head: the reference with a mouth that opens
//     with each frame's loudness. Same bytes for any thread count. Its
//     hang_at_step and hang_ignores_cancel parameters (off by default) make
//     a stuck step as sim's do, for the stall watchdog's chaos test on the
//     model the oracle runs.
//   - sim: sleeps per step and emits flat frames; for control-plane and
//     scaling benchmarks only. Its hang_at_step parameter makes a step that
//     never ends (and hang_ignores_cancel=1 one that ignores cancel too),
//     for the tests of a stuck engine.
//   - python: libspool_infer_python.so (make -C libs/infer python) embeds
//     CPython and calls a module's generate_segment; see python/PROTOCOL.md.
//   - cuda: libspool_infer_cuda.so (make -C libs/infer cuda, needs nvcc), the
//     ref algorithm on a GPU, built for sm_80, sm_86, sm_89 and sm_90 with
//     compute_90 PTX (make -C libs/infer cuda-check checks them). On a
//     machine without a GPU, Open fails with ErrDevice, "cuda: no CUDA device".
package infer
