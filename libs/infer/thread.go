package infer

import "runtime"

// osThread runs the calls into one engine's C code, all on one OS thread
// that belongs to the engine for its whole life. Backends keep state per
// thread: the embedded CPython's thread state, the OpenMP thread team that
// torch's CPU kernels run on (one per calling thread), the current CUDA
// device. A goroutine may move to another OS thread between two cgo calls;
// an engine's calls, from open to close, must not.
type osThread struct {
	calls chan func()
	done  chan struct{}
}

func startOSThread() *osThread {
	t := &osThread{calls: make(chan func()), done: make(chan struct{})}
	go func() {
		// Unlocked when the engine closes: the thread goes back to the
		// runtime, with whatever per-thread state the backend left (the
		// python plugin keeps its thread states for the process's life, so
		// a later engine on the thread finds them valid).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for f := range t.calls {
			f()
			t.done <- struct{}{}
		}
	}()
	return t
}

// do runs f on the thread and returns when it has. f should be built once
// (a field of the engine) where the caller must not allocate.
func (t *osThread) do(f func()) {
	t.calls <- f
	<-t.done
}

// stop ends the thread once its last call has returned.
func (t *osThread) stop() { close(t.calls) }
