package infer

/*
#include <stdlib.h>
#include <stdint.h>
#include "spool_infer.h"

extern int spoolGoStep(void *, uint32_t, uint32_t);
extern int spoolGoTail(void *, uint8_t *, size_t);
extern int spoolGoFrame(void *, spool_frame *);

static spool_status run_with_go(spool_engine_t *e, const spool_request *req, uintptr_t handle, const int32_t *cancel) {
	spool_callbacks cb = {
		(void *)handle,
		(int (*)(void *, uint32_t, uint32_t))spoolGoStep,
		(int (*)(void *, const uint8_t *, size_t))spoolGoTail,
		(int (*)(void *, const spool_frame *))spoolGoFrame,
	};
	return spool_engine_run(e, req, &cb, cancel);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Request is one segment to generate.
type Request struct {
	Prompt   string
	Seed     uint64
	Width    int // pixels, even
	Height   int // pixels, even
	Frames   int // frames generated, overlap included
	Overlap  int // leading frames conditioned on Cond or Prefix
	Steps    int
	Guidance float32
	// FirstFrame is the video index of the segment's first frame. It is
	// negative only in an extension, when some of its Overlap conditioning
	// frames (Prefix, or Cond) come before frame 0 of the output (then
	// -Overlap ≤ FirstFrame < 0).
	FirstFrame int64
	// Cond is the previous segment's tail state; nil for none. When given,
	// the first Overlap frames reproduce the frames it was taken from.
	Cond []byte
	// Prefix is media to start from instead of a tail state (never both):
	// Overlap frames of Width×Height packed RGB24, rows top to bottom,
	// frame after frame, exactly Overlap×Width×Height×3 bytes; nil for
	// none. The backend encodes them into its latent space and holds them
	// clean, and the first Overlap frames come out decoded from them: close
	// to them, as near as the backend's encode and decode go. One frame is
	// image to video; an input video's last frames are an extension.
	Prefix []byte
	// TailFrames is how many trailing frames' latents Tail receives; 0 for
	// none.
	TailFrames int
	// FPS is the video's frame rate, 1..240 (0: not given). Models that
	// are conditioned on it (SkyReels-V2 takes fps) read it, and so does
	// Audio: a request with Audio needs it; ref reads it for nothing else.
	FPS int
	// Audio is the segment's sound for an audio-driven model: mono float32
	// samples (full scale ±1, every one finite) at AudioRate Hz, exactly
	// those of the segment's frames, overlap included. Frame t of the video
	// owns samples [S(t), S(t+1)) of the track, S(t) = round(t·AudioRate/FPS)
	// with halves rounded up (plan.SampleAt), so Audio is samples
	// [S(FirstFrame), S(FirstFrame+Frames)), zeros where the track has
	// none, and len(Audio) must be exactly S(FirstFrame+Frames) −
	// S(FirstFrame). nil for none. Handed to the engine without a copy
	// (pinned for the call); it must not change while Run runs.
	Audio []float32
	// AudioRate is Audio's sample rate in Hz, 8000..192000; 0 exactly when
	// Audio is nil.
	AudioRate int
	// Reference is what a talking-head model animates: exactly Frames
	// frames of Width×Height packed RGB24 (laid out as Prefix), frame i
	// being what segment frame i shows of the avatar (an image repeated, a
	// template video's frame with its loop applied), Frames×Width×Height×3
	// bytes; nil for none. ref then draws a mouth on each frame that opens
	// with the loudness of the frame's own Audio samples (closed without
	// Audio); ref refuses Audio without Reference, and a backend that cannot
	// use either refuses it. Handed over without a copy, as Audio is.
	Reference []byte
}

// Frame is a decoded frame. RGB points into the engine's buffer, packed
// RGB24 rows of Stride bytes, and is valid only during the Sink call.
type Frame struct {
	Index, Width, Height, Stride int
	RGB                          []byte
}

// Sink receives a run's output, on the goroutine that called Run, in this
// order: Step per denoise step, Tail once (when TailFrames > 0), then Frame
// per frame. An error stops the run; Run returns it wrapped in ErrAborted.
type Sink interface {
	Step(step, steps int) error
	Tail(state []byte) error
	Frame(f Frame) error
}

// runner is what the C callbacks reach through the engine's cgo.Handle: the
// sink of the current Run and the first error it returned.
type runner struct {
	sink Sink
	err  error
	// done is the run's ctx.Done(): every callback looks at it and raises
	// the cancel flag itself, so a cancel that happened before or during a
	// callback is seen by the engine's next check, whatever the watcher
	// goroutine's scheduling (which stays for engines between callbacks).
	done   <-chan struct{}
	cancel *C.int32_t
}

// fail ends every callback: it raises the cancel flag if the run's context
// is done, and turns the sink's error into the engine's abort.
func (r *runner) fail(err error) C.int {
	if r.done != nil {
		select {
		case <-r.done:
			atomic.StoreInt32((*int32)(unsafe.Pointer(r.cancel)), 1)
		default:
		}
	}
	if err == nil {
		return 0
	}
	r.err = err
	return 1
}

func uint32Field(name string, v int) (C.uint32_t, error) {
	if v < 0 || v > 1<<31 {
		return 0, fmt.Errorf("infer: %w: %s %d out of range", ErrInvalidRequest, name, v)
	}
	return C.uint32_t(v), nil
}

// callRun runs the engine on e.req, on the engine's thread (runCall).
func (e *Engine) callRun() { e.st = C.run_with_go(e.e, e.req, C.uintptr_t(e.handle), e.cancel) }

// Run generates one segment. Cancelling ctx sets the engine's cancel flag;
// the run then stops within a denoise step or a frame with an error wrapping
// both ErrCancelled and ctx.Err(). A backend stuck inside a step (a
// deadlocked device call, a Python module blocked outside its io calls)
// does not read the flag, and Run then does not return: the engine stays
// locked for good (Close would wait for it), so a caller that must go on
// gives the engine up and ends the process. A Sink error stops the run too: Run
// returns it wrapped with ErrAborted. Every status of the library maps to
// one of the package's errors, with the engine's message.
//
// Run allocates nothing on the Go heap per frame, and nothing at all for a
// context that cannot be cancelled (a cancellable one costs a watcher
// goroutine).
func (e *Engine) Run(ctx context.Context, req Request, sink Sink) error {
	if sink == nil {
		return fmt.Errorf("infer: %w: nil sink", ErrInvalidRequest)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.e == nil {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("infer: %w: %w", ErrCancelled, err)
	}
	if strings.ContainsRune(req.Prompt, 0) {
		return fmt.Errorf("infer: %w: prompt contains a NUL byte", ErrInvalidRequest)
	}
	var fields [8]C.uint32_t
	for i, f := range [...]struct {
		name string
		v    int
	}{{"width", req.Width}, {"height", req.Height}, {"frames", req.Frames}, {"overlap", req.Overlap},
		{"steps", req.Steps}, {"tail_frames", req.TailFrames}, {"fps", req.FPS}, {"audio_rate", req.AudioRate}} {
		v, err := uint32Field(f.name, f.v)
		if err != nil {
			return err
		}
		fields[i] = v
	}
	prompt := C.CString(req.Prompt) // C memory: no Go allocation
	defer C.free(unsafe.Pointer(prompt))
	*e.req = C.spool_request{
		struct_size: C.uint32_t(unsafe.Sizeof(C.spool_request{})),
		prompt:      prompt, seed: C.uint64_t(req.Seed), width: fields[0], height: fields[1], frames: fields[2],
		overlap: fields[3], steps: fields[4], tail_frames: fields[5], fps: fields[6], guidance: C.float(req.Guidance),
		first_frame: C.int64_t(req.FirstFrame),
	}
	if len(req.Cond) > 0 {
		// The engine reads the blob during the whole call: copy it into C
		// memory rather than pin Go memory.
		cond := C.CBytes(req.Cond)
		defer C.free(cond)
		e.req.cond, e.req.cond_len = (*C.uint8_t)(cond), C.size_t(len(req.Cond))
	}
	if len(req.Prefix) > 0 {
		// Copied into C memory as cond is; the engine checks its length.
		prefix := C.CBytes(req.Prefix)
		defer C.free(prefix)
		e.req.prefix, e.req.prefix_len = (*C.uint8_t)(prefix), C.size_t(len(req.Prefix))
	}
	e.req.audio_rate = fields[7]
	// Audio and reference frames can be large (a 720p talking-head window
	// is hundreds of megabytes of reference): the engine reads them in
	// place, pinned so that the C request may point at them for the call.
	if len(req.Audio) > 0 || len(req.Reference) > 0 {
		defer e.pin.Unpin()
	}
	if len(req.Audio) > 0 {
		e.pin.Pin(&req.Audio[0])
		e.req.audio, e.req.audio_len = (*C.float)(unsafe.Pointer(&req.Audio[0])), C.size_t(len(req.Audio))
	}
	if len(req.Reference) > 0 {
		e.pin.Pin(&req.Reference[0])
		e.req.reference, e.req.reference_len = (*C.uint8_t)(unsafe.Pointer(&req.Reference[0])), C.size_t(len(req.Reference))
	}
	*e.cancel = 0
	if ctx.Done() != nil {
		// The watcher stores the flag atomically; Run waits for it to stop
		// before returning, so a late store cannot cancel the next run.
		done, watched := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-ctx.Done():
				atomic.StoreInt32((*int32)(unsafe.Pointer(e.cancel)), 1)
			case <-done:
			}
		}()
		defer func() {
			close(done)
			<-watched
		}()
	}
	e.run = runner{sink: sink, done: ctx.Done(), cancel: e.cancel}
	defer func() { e.run = runner{} }() // keep no reference to the sink
	e.thread.do(e.runCall)
	st := e.st
	e.req.prompt, e.req.cond, e.req.prefix, e.req.audio, e.req.reference = nil, nil, nil, nil, nil
	if st == C.SPOOL_OK {
		return nil
	}
	err := statusErr(st, C.GoString(C.spool_engine_last_error(e.e)))
	switch {
	case errors.Is(err, ErrCancelled) && ctx.Err() != nil:
		return fmt.Errorf("%w: %w", err, ctx.Err())
	case errors.Is(err, ErrAborted) && e.run.err != nil:
		return fmt.Errorf("%w: %w", err, e.run.err)
	}
	return err
}
