package jobspec

import (
	"slices"
	"strings"
	"time"
)

// Model is what validation needs to know of a model.
type Model struct {
	Name string
	// Align, when > 1, means frame counts must be ≡ 1 (mod Align).
	Align int
	// Window and Overlap defaults, in frames, for frames up to 540 pixels
	// high (Small) and above (Large), as SkyReels-V2 uses them.
	SmallWindow, SmallOverlap int
	LargeWindow, LargeOverlap int
	// MaxWindow is the longest window the model can generate.
	MaxWindow int
	// Steps and Guidance defaults.
	Steps    int
	Guidance float32
	// StepTime is the expected wall time of one denoise step of a full
	// window on the model's target hardware; the worker's stall watchdog
	// waits several of these for progress before it ends an attempt
	// STALLED. 0 means the worker's SPOOL_WORKER_STALL_TIMEOUT alone.
	StepTime time.Duration
}

// Catalog is the set of models and pools a dispatcher accepts.
type Catalog struct {
	Models map[string]Model
	Pools  []string
}

// DefaultModel is the model of a spec that names none.
const DefaultModel = "ref"

// DefaultCatalog knows the built-in engines and the SkyReels-V2 diffusion
// forcing models, served by the pool "default".
func DefaultCatalog() Catalog {
	df := func(name string) Model {
		return Model{Name: name, Align: 4, SmallWindow: 97, SmallOverlap: 17, LargeWindow: 121, LargeOverlap: 37, MaxWindow: 257, Steps: 30, Guidance: 6}
	}
	ref := df("ref")
	ref.Align = 1
	sim := ref
	sim.Name = "sim"
	small, large := df("skyreels-v2-df-1.3b-540p"), df("skyreels-v2-df-14b-720p")
	small.StepTime, large.StepTime = 2*time.Second, 20*time.Second
	c := Catalog{Models: map[string]Model{}, Pools: []string{DefaultPool}}
	for _, m := range []Model{ref, sim, small, large} {
		c.Models[m.Name] = m
	}
	return c
}

// modelNames lists the catalogue's models, sorted, for error messages.
func (c Catalog) modelNames() string {
	names := make([]string, 0, len(c.Models))
	for n := range c.Models {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
