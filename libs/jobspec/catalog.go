package jobspec

import (
	_ "embed"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Model is one model of the catalog: what runs it and the defaults of a job
// that names it. Catalogs are read from YAML (catalog.yaml documents every
// field); ParseCatalog checks every number.
type Model struct {
	Name        string
	Description string
	// Backend is the inference backend that runs the model: ref, sim,
	// python or cuda.
	Backend string
	// Params are backend parameters fixed for the model, given to its
	// engine (e.g. the python module and the weights it loads).
	Params map[string]string
	// Align, when > 1, means frame counts must be ≡ 1 (mod Align).
	Align int
	// MaxWindow is the longest window the model was trained on, in frames.
	MaxWindow int
	// Steps and Guidance defaults.
	Steps    int
	Guidance float32
	// Shift is the flow-matching timestep shift the model was trained
	// with; 0 for none. It reaches the engine as the backend parameter
	// "shift".
	Shift float32
	// FPS is the default frame rate of the model's videos.
	FPS int
	// GPUMemoryMiB is the GPU memory one engine of the model needs; 0 for
	// a model that runs on the CPU.
	GPUMemoryMiB uint64
	// AudioSampleRate is the rate, in Hz, of the mono audio an
	// audio-driven model reads; 0 for a model without audio.
	AudioSampleRate int
	// TalkingHead marks a model that animates a reference (an image or a
	// video of a face: the job's reference) speaking the job's audio. Its
	// jobs need both; AudioSampleRate is then > 0.
	TalkingHead bool
	// StepTime is the expected wall time of one denoise step of a full
	// window on the model's target hardware; the worker's stall watchdog
	// waits several of these for progress before it ends an attempt
	// STALLED. 0 means the worker's SPOOL_WORKER_STALL_TIMEOUT alone.
	StepTime time.Duration
	// DefaultResolution names the resolution of a spec that gives none.
	DefaultResolution string
	// AnySize accepts any even size within the job limits; otherwise only
	// Resolutions are allowed.
	AnySize bool
	// Resolutions are the model's sizes with their default window and
	// overlap, in the catalog's order.
	Resolutions []Resolution
}

// Resolution is a size a model generates and its default window and
// overlap there.
type Resolution struct {
	Name          string // e.g. "540p"; a spec's RESOLUTION_540P picks it
	Width, Height int    // pixels
	Window        int    // frames per segment
	Overlap       int    // frames shared by neighbouring segments
}

// Size is "960x544".
func (r Resolution) Size() string { return fmt.Sprintf("%dx%d", r.Width, r.Height) }

// Resolution returns the model's resolution named name.
func (m Model) Resolution(name string) (Resolution, bool) {
	for _, r := range m.Resolutions {
		if r.Name == name {
			return r, true
		}
	}
	return Resolution{}, false
}

// Default is the model's default resolution.
func (m Model) Default() Resolution {
	r, _ := m.Resolution(m.DefaultResolution)
	return r
}

// CPU reports whether the model runs without a GPU.
func (m Model) CPU() bool { return m.GPUMemoryMiB == 0 }

// windowFor is the resolution whose window and overlap a job of w×h gets:
// the exact size when listed, else (for AnySize) the smallest listed one
// whose short side is at least the job's, else the largest. ok is false
// when the model does not allow w×h.
func (m Model) windowFor(w, h int) (r Resolution, ok bool) {
	for _, r := range m.Resolutions {
		if r.Width == w && r.Height == h {
			return r, true
		}
	}
	if !m.AnySize {
		return Resolution{}, false
	}
	short := min(w, h)
	best := -1
	for i, r := range m.Resolutions {
		s := min(r.Width, r.Height)
		if s >= short && (best < 0 || s < min(m.Resolutions[best].Width, m.Resolutions[best].Height)) {
			best = i
		}
	}
	if best < 0 { // larger than every listed size: the largest one's
		for i, r := range m.Resolutions {
			if best < 0 || min(r.Width, r.Height) > min(m.Resolutions[best].Width, m.Resolutions[best].Height) {
				best = i
			}
		}
	}
	return m.Resolutions[best], true
}

// resolutionsText lists the model's resolutions for error messages:
// "540p (960x544), 540p-portrait (544x960)".
func (m Model) resolutionsText() string {
	parts := make([]string, len(m.Resolutions))
	for i, r := range m.Resolutions {
		parts[i] = r.Name + " (" + r.Size() + ")"
	}
	s := strings.Join(parts, ", ")
	if m.AnySize {
		s += ", or any size within the limits"
	}
	return s
}

// Catalog is the set of models, and the pools that serve them, a job is
// validated against. With no Pools nothing is routed (the oracle's view: a
// job's pool never changes what it looks like): any model of the catalog
// is accepted and the pool is the spec's, or DefaultPool.
type Catalog struct {
	Models map[string]Model
	Pools  Pools
}

// DefaultModel is the model of a spec that names none.
const DefaultModel = "ref"

//go:embed catalog.yaml
var shipped []byte

// shippedCatalog is the parsed catalog.yaml; a test proves it parses.
var shippedCatalog = func() Catalog {
	c, err := ParseCatalog(shipped)
	if err != nil {
		panic("jobspec: the shipped catalog.yaml: " + err.Error())
	}
	return c
}()

// DefaultCatalog is the catalog shipped with spool (catalog.yaml), with no
// pools. Its maps are the caller's own.
func DefaultCatalog() Catalog {
	c := Catalog{Models: maps.Clone(shippedCatalog.Models)}
	for n, m := range c.Models {
		m.Params = maps.Clone(m.Params)
		m.Resolutions = slices.Clone(m.Resolutions)
		c.Models[n] = m
	}
	return c
}

// Shipped is the catalog file built into spool, for -h and docs.
func Shipped() []byte { return slices.Clone(shipped) }

// LoadCatalog reads the catalog file at path, or returns DefaultCatalog
// when path is empty. The file replaces the shipped catalog whole. Errors
// name the file, and the model and field at fault.
func LoadCatalog(path string) (Catalog, error) {
	if path == "" {
		return DefaultCatalog(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Catalog{}, fmt.Errorf("catalog: %w", err)
	}
	c, err := ParseCatalog(data)
	if err != nil {
		return Catalog{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// LoadRouted loads the catalog file (LoadCatalog; "" is the shipped one)
// and routes it through the pools declared by decl (ParsePools), as the
// dispatcher and the gateway do; errors name the variable decl came from.
func LoadRouted(file, decl, variable string) (Catalog, error) {
	pools, err := ParsePools(decl)
	if err != nil {
		return Catalog{}, fmt.Errorf("%s: %w", variable, err)
	}
	c, err := LoadCatalog(file)
	if err != nil {
		return Catalog{}, err
	}
	return c.WithPools(pools)
}

// WithPools returns the catalog routed through pools, after checking that
// every model a pool serves is in the catalog.
func (c Catalog) WithPools(pools Pools) (Catalog, error) {
	for _, p := range pools {
		for _, m := range p.Models {
			if _, ok := c.Models[m]; !ok {
				return Catalog{}, fmt.Errorf("catalog: %w: pool %s serves model %q, which the catalog does not have (it has %s)",
					ErrCatalog, p.Name, m, c.modelNames())
			}
		}
	}
	c.Pools = pools
	return c, nil
}

// Names lists the catalog's models, sorted.
func (c Catalog) Names() []string {
	return slices.Sorted(maps.Keys(c.Models))
}

// OfBackend lists, sorted, the models that backend runs.
func (c Catalog) OfBackend(backend string) []string {
	var out []string
	for _, n := range c.Names() {
		if c.Models[n].Backend == backend {
			out = append(out, n)
		}
	}
	return out
}

// CPUModels lists, sorted, the models that need no GPU.
func (c Catalog) CPUModels() []string {
	var out []string
	for _, n := range c.Names() {
		if c.Models[n].CPU() {
			out = append(out, n)
		}
	}
	return out
}

// CPUPool is a pool named name that serves every CPU model of the catalog,
// as a development stack's does.
func (c Catalog) CPUPool(name string) Pool { return Pool{Name: name, Models: c.CPUModels()} }

// modelNames lists the catalogue's models, sorted, for error messages.
func (c Catalog) modelNames() string { return strings.Join(c.Names(), ", ") }
