package infer

/*
#cgo CFLAGS: -I${SRCDIR}/include -I${SRCDIR}/src -std=c11 -O2 -fvisibility=hidden -Wall
#cgo LDFLAGS: -ldl -lm -lpthread
#include <stdlib.h>
#include "spool_infer.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"unsafe"
)

// Info describes an open engine.
type Info struct {
	Backend        string
	Model          string
	ModelVersion   string
	LatentChannels int
	LatentScale    int // pixels per latent cell on each axis
	FrameAlign     int // frames must be ≡ 1 (mod FrameAlign)
	// TemporalScale is video frames per latent frame (1, or 4 for Wan-style
	// VAEs); tail states hold (n-1)/TemporalScale+1 latent frames.
	TemporalScale int
}

// Engine is an open, warm engine. It is used by one goroutine at a time:
// Run and Close serialise on a mutex, so a second goroutine's Run waits for
// the first. Open one engine per worker slot for parallelism.
type Engine struct {
	mu   sync.Mutex
	e    *C.spool_engine_t
	info Info
	// Owned for the engine's life, so that Run allocates nothing on the Go
	// heap: the C request, the C cancel flag, and the runner that the C
	// callbacks reach through a cgo.Handle.
	req    *C.spool_request
	cancel *C.int32_t
	run    runner
	handle cgo.Handle
	// pin pins a request's audio and reference frames while the C request
	// points at them.
	pin runtime.Pinner
	// thread is the engine's OS thread: every C call of the engine runs on
	// it (see osThread). runCall runs the request on it, setting st.
	thread  *osThread
	runCall func()
	st      C.spool_status
}

// Open opens an engine of backend ("ref", "sim", "python", "cuda") and loads
// its model. A plugin that is not built or not found is ErrBackendNotFound;
// plugins are looked for in WithPluginDir, then $SPOOL_INFER_PLUGIN_DIR,
// then the program's directory.
func Open(backend string, opts ...Option) (*Engine, error) {
	o := options{device: -1}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if backend == "" || strings.ContainsRune(backend, 0) {
		return nil, fmt.Errorf("infer: %w: backend %q: want a name such as ref, sim, python or cuda", ErrInvalidRequest, backend)
	}
	cs := func(s string) *C.char {
		if s == "" {
			return nil
		}
		return C.CString(s)
	}
	cBackend, cModel, cWeights, cPlugins, cParams := C.CString(backend), cs(o.model), cs(o.weights), cs(o.pluginDir), cs(o.paramString())
	defer func() {
		for _, p := range []*C.char{cBackend, cModel, cWeights, cPlugins, cParams} {
			C.free(unsafe.Pointer(p))
		}
	}()
	copts := C.spool_engine_options{
		struct_size: C.uint32_t(unsafe.Sizeof(C.spool_engine_options{})),
		backend:     cBackend, model: cModel, weights_dir: cWeights, device: C.int32_t(o.device),
		plugin_dir: cPlugins, params: cParams, threads: C.int32_t(o.threads),
	}
	var errbuf [4096]C.char
	var e *C.spool_engine_t
	var st C.spool_status
	info := C.spool_engine_info{struct_size: C.uint32_t(unsafe.Sizeof(C.spool_engine_info{}))}
	thread := startOSThread()
	thread.do(func() {
		if st = C.spool_engine_open(&copts, &e, &errbuf[0], C.size_t(len(errbuf))); st != C.SPOOL_OK {
			return
		}
		if st = C.spool_engine_info_get(e, &info); st != C.SPOOL_OK {
			C.spool_engine_close(e)
			copy(errbuf[:], []C.char{'e', 'n', 'g', 'i', 'n', 'e', ' ', 'i', 'n', 'f', 'o', 0})
		}
	})
	if st != C.SPOOL_OK {
		thread.stop()
		return nil, statusErr(st, C.GoString(&errbuf[0]))
	}
	req := (*C.spool_request)(C.calloc(1, C.size_t(unsafe.Sizeof(C.spool_request{}))))
	cancel := (*C.int32_t)(C.calloc(1, 4))
	if req == nil || cancel == nil {
		C.free(unsafe.Pointer(req))
		C.free(unsafe.Pointer(cancel))
		thread.do(func() { C.spool_engine_close(e) })
		thread.stop()
		return nil, fmt.Errorf("infer: %w: request buffers", ErrOutOfMemory)
	}
	eng := &Engine{e: e, req: req, cancel: cancel, thread: thread, info: Info{
		Backend: C.GoString(info.backend), Model: C.GoString(info.model), ModelVersion: C.GoString(info.model_version),
		LatentChannels: int(info.latent_channels), LatentScale: int(info.latent_scale), FrameAlign: int(info.frame_align),
		TemporalScale: int(info.temporal_scale),
	}}
	eng.handle = cgo.NewHandle(&eng.run)
	eng.runCall = eng.callRun
	return eng, nil
}

// ABIVersion is the C library's ABI version.
func ABIVersion() int { return int(C.spool_abi_version()) }

// Info describes the engine.
func (e *Engine) Info() Info { return e.info }

// Close frees the engine and everything the library holds for it. It is
// idempotent: later calls are no-ops, and Run returns ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.e != nil {
		e.thread.do(func() { C.spool_engine_close(e.e) })
		e.thread.stop()
		C.free(unsafe.Pointer(e.req))
		C.free(unsafe.Pointer(e.cancel))
		e.handle.Delete()
		e.e, e.req, e.cancel = nil, nil, nil
	}
	return nil
}
