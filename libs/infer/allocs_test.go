//go:build !asan

// Under -asan the Go allocator is instrumented and allocation counts mean
// nothing, so this file is left out of that build rather than skipped.

package infer_test

import (
	"context"
	"runtime/cgo"
	"testing"

	"github.com/spoolvideo/spool/libs/infer"
)

// TestRunAllocatesNothing: with a context that cannot be cancelled, a whole
// run of many frames allocates nothing on the Go heap, so neither do the
// frame callbacks. Handles are created first so that their values are past
// the range Go boxes without allocating.
func TestRunAllocatesNothing(t *testing.T) {
	for range 300 {
		cgo.NewHandle(0).Delete()
	}
	e := open(t, "sim")
	r := infer.Request{Prompt: "x", Width: 16, Height: 16, Frames: 256, Steps: 4, TailFrames: 1}
	d := &discard{}
	if n := testing.AllocsPerRun(10, func() { _ = e.Run(context.Background(), r, d) }); n != 0 {
		t.Fatalf("%v allocations per run of %d frames", n, r.Frames)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A cancellable context costs a watcher per run, never per frame.
	if n := testing.AllocsPerRun(10, func() { _ = e.Run(ctx, r, d) }); n > 8 {
		t.Fatalf("%v allocations per cancellable run", n)
	}
}
