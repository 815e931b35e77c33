package infer

/*
#include "spool_infer.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// The C engine calls these on the goroutine that called Run. The user
// pointer is a cgo.Handle of the *runner.

//export spoolGoStep
func spoolGoStep(user unsafe.Pointer, step, steps C.uint32_t) C.int {
	r := cgo.Handle(uintptr(user)).Value().(*runner)
	return r.fail(r.sink.Step(int(step), int(steps)))
}

//export spoolGoTail
func spoolGoTail(user unsafe.Pointer, state *C.uint8_t, n C.size_t) C.int {
	r := cgo.Handle(uintptr(user)).Value().(*runner)
	return r.fail(r.sink.Tail(unsafe.Slice((*byte)(unsafe.Pointer(state)), int(n))))
}

//export spoolGoFrame
func spoolGoFrame(user unsafe.Pointer, f *C.spool_frame) C.int {
	r := cgo.Handle(uintptr(user)).Value().(*runner)
	fr := Frame{
		Index: int(f.index), Width: int(f.width), Height: int(f.height), Stride: int(f.stride),
		RGB: unsafe.Slice((*byte)(unsafe.Pointer(f.rgb)), int(f.stride)*int(f.height)),
	}
	return r.fail(r.sink.Frame(fr))
}
