package infer

/*
#cgo CFLAGS: -I${SRCDIR}/include -I${SRCDIR}/src -std=c11 -O2 -fvisibility=hidden -Wall
#cgo LDFLAGS: -ldl -lm
#include <stdlib.h>
#include "spool_infer.h"
*/
import "C"

import (
	"errors"
	"fmt"
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

// Engine is an open, warm engine.
type Engine struct {
	mu   sync.Mutex
	e    *C.spool_engine_t
	info Info
}

// Option configures Open.
type Option func(*options) error

type options struct {
	model, weights, pluginDir, params string
	device                            int
}

// WithModel names the model to load; the backend's default otherwise.
func WithModel(m string) Option { return func(o *options) error { o.model = m; return nil } }

// WithWeightsDir sets the directory of the model's weights.
func WithWeightsDir(d string) Option { return func(o *options) error { o.weights = d; return nil } }

// WithDevice picks a GPU ordinal; -1 (the default) is the CPU.
func WithDevice(n int) Option {
	return func(o *options) error {
		if n < -1 {
			return fmt.Errorf("infer: device %d: want -1 (CPU) or a GPU ordinal", n)
		}
		o.device = n
		return nil
	}
}

// WithPluginDir sets where plugins (libspool_infer_<backend>.so) are looked
// for first; then $SPOOL_INFER_PLUGIN_DIR, then the program's directory.
func WithPluginDir(d string) Option { return func(o *options) error { o.pluginDir = d; return nil } }

// WithParams passes backend parameters, e.g. "step_ms=5" for sim or
// "module=spool_numpy_ref;path=/opt/models" for python.
func WithParams(p string) Option {
	return func(o *options) error {
		if strings.ContainsRune(p, 0) {
			return errors.New("infer: params contain a NUL byte")
		}
		o.params = p
		return nil
	}
}

// Open opens an engine of backend ("ref", "sim", "python", "cuda") and loads
// its model. A plugin that is not built or not found is ErrBackendNotFound.
func Open(backend string, opts ...Option) (*Engine, error) {
	o := options{device: -1}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	for _, s := range []string{backend, o.model, o.weights, o.pluginDir} {
		if strings.ContainsRune(s, 0) {
			return nil, errors.New("infer: option contains a NUL byte")
		}
	}
	cs := func(s string) *C.char {
		if s == "" {
			return nil
		}
		return C.CString(s)
	}
	cBackend, cModel, cWeights, cPlugins, cParams := C.CString(backend), cs(o.model), cs(o.weights), cs(o.pluginDir), cs(o.params)
	defer func() {
		for _, p := range []*C.char{cBackend, cModel, cWeights, cPlugins, cParams} {
			C.free(unsafe.Pointer(p))
		}
	}()
	copts := C.spool_engine_options{
		struct_size: C.uint32_t(unsafe.Sizeof(C.spool_engine_options{})),
		backend:     cBackend, model: cModel, weights_dir: cWeights, device: C.int32_t(o.device),
		plugin_dir: cPlugins, params: cParams,
	}
	var errbuf [4096]C.char
	var e *C.spool_engine_t
	if st := C.spool_engine_open(&copts, &e, &errbuf[0], C.size_t(len(errbuf))); st != C.SPOOL_OK {
		return nil, statusErr(st, C.GoString(&errbuf[0]))
	}
	info := C.spool_engine_info{struct_size: C.uint32_t(unsafe.Sizeof(C.spool_engine_info{}))}
	if st := C.spool_engine_info_get(e, &info); st != C.SPOOL_OK {
		C.spool_engine_close(e)
		return nil, statusErr(st, "engine info")
	}
	return &Engine{e: e, info: Info{
		Backend: C.GoString(info.backend), Model: C.GoString(info.model), ModelVersion: C.GoString(info.model_version),
		LatentChannels: int(info.latent_channels), LatentScale: int(info.latent_scale), FrameAlign: int(info.frame_align),
		TemporalScale: int(info.temporal_scale),
	}}, nil
}

// ABIVersion is the C library's ABI version.
func ABIVersion() int { return int(C.spool_abi_version()) }

// Info describes the engine.
func (e *Engine) Info() Info { return e.info }

// Close frees the engine; later calls are no-ops and Run returns ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.e != nil {
		C.spool_engine_close(e.e)
		e.e = nil
	}
	return nil
}
