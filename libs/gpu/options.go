package gpu

import (
	"errors"
	"os"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Option configures Open.
type Option func(*options) error

type options struct {
	lib        nvml.Interface
	visible    string
	visibleSet bool
}

// WithLibrary uses lib instead of the system's NVML: tests pass one of
// go-nvml's mock machines (e.g. dgxh100.New()).
func WithLibrary(lib nvml.Interface) Option {
	return func(o *options) error {
		if lib == nil {
			return errors.New("gpu: WithLibrary: nil library")
		}
		o.lib = lib
		return nil
	}
}

// WithVisibleDevices restricts the GPUs to list, in CUDA_VISIBLE_DEVICES
// syntax, instead of reading the environment.
func WithVisibleDevices(list string) Option {
	return func(o *options) error {
		o.visible, o.visibleSet = list, true
		return nil
	}
}

// visibleFromEnv reads SPOOL_WORKER_GPUS, then CUDA_VISIBLE_DEVICES.
func visibleFromEnv() (string, bool) {
	for _, name := range []string{"SPOOL_WORKER_GPUS", "CUDA_VISIBLE_DEVICES"} {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
	}
	return "", false
}
