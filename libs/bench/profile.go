package bench

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// CPUProfile starts a CPU profile of this process into path and returns the
// function that stops it and closes the file; with path empty it does
// nothing. A benchmark binary's -cpuprofile flag.
func CPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
