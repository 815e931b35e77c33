package jobspec

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/spoolvideo/spool/libs/ident"
)

// ErrCatalog is matched by every error of a catalog that cannot be used.
var ErrCatalog = errors.New("invalid model catalog")

// The catalog's limits, beyond a job's.
const (
	MaxFrameAlign   = 64
	MaxShift        = 100
	MaxGPUMemoryMiB = 1 << 24 // 16 TiB
	MaxStepTime     = time.Hour
	// The sample rates an audio-driven model may read, Hz.
	MinAudioRate = 8000
	MaxAudioRate = 192000
)

// modelKeys and resolutionKeys are every key of a model and of a
// resolution, each required; any other key is an error.
var (
	modelKeys = []string{"description", "backend", "params", "frame_align", "max_window", "steps", "guidance", "shift", "fps",
		"gpu_memory_mib", "audio_sample_rate", "talking_head", "step_time", "default_resolution", "any_size", "resolutions"}
	resolutionKeys = []string{"name", "width", "height", "window", "overlap"}
)

// ValidModelName reports whether s can name a model: 1..64 of a-z, 0-9,
// '-', '_' and '.', starting with a letter or digit (so never ',', ';' or
// ':', which pool declarations use).
func ValidModelName(s string) bool {
	return ident.Valid(strings.ReplaceAll(s, ".", "-")) && s[0] != '.'
}

const modelNameRule = "1..64 of a-z, 0-9, '-', '_' and '.', starting with a letter or digit"

// ParseCatalog reads a catalog from YAML (catalog.yaml is the shipped one
// and documents the format). Every key is required and no other is
// allowed; every number is checked against the job limits and the others
// (a window within the trained maximum, aligned frame counts, an overlap
// below its window). An error is ErrCatalog and names the model and field.
func ParseCatalog(data []byte) (Catalog, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Catalog{}, fmt.Errorf("catalog: %w: %w", ErrCatalog, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return Catalog{}, fmt.Errorf("catalog: %w: want a mapping with the one key models", ErrCatalog)
	}
	top := doc.Content[0]
	var models *yaml.Node
	for i := 0; i < len(top.Content); i += 2 {
		if k := top.Content[i].Value; k != "models" {
			return Catalog{}, fmt.Errorf("catalog: %w: line %d: unknown key %q; want the one key models", ErrCatalog, top.Content[i].Line, k)
		}
		models = top.Content[i+1]
	}
	if models == nil || models.Kind != yaml.MappingNode || len(models.Content) == 0 {
		return Catalog{}, fmt.Errorf("catalog: %w: models: want a mapping of at least one model name to its description", ErrCatalog)
	}
	c := Catalog{Models: map[string]Model{}}
	for i := 0; i < len(models.Content); i += 2 {
		name := models.Content[i].Value
		fail := func(format string, args ...any) error {
			return fmt.Errorf("catalog: %w: model %q: %s", ErrCatalog, name, fmt.Sprintf(format, args...))
		}
		switch {
		case !ValidModelName(name):
			return Catalog{}, fail("line %d: the name is not allowed; want %s", models.Content[i].Line, modelNameRule)
		case c.Models[name].Name != "":
			return Catalog{}, fail("line %d: given twice", models.Content[i].Line)
		}
		m, err := parseModel(models.Content[i+1])
		if err != nil {
			return Catalog{}, fail("%s", err.Error())
		}
		m.Name = name
		c.Models[name] = m
	}
	return c, nil
}

// checkKeys requires exactly keys in the mapping n.
func checkKeys(n *yaml.Node, keys []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of %s", n.Line, strings.Join(keys, ", "))
	}
	seen := map[string]bool{}
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i].Value
		switch {
		case !slices.Contains(keys, k):
			return fmt.Errorf("%s: line %d: unknown key; want only %s", k, n.Content[i].Line, strings.Join(keys, ", "))
		case seen[k]:
			return fmt.Errorf("%s: line %d: given twice", k, n.Content[i].Line)
		}
		seen[k] = true
	}
	for _, k := range keys {
		if !seen[k] {
			return fmt.Errorf("%s: missing (line %d); every key is required", k, n.Line)
		}
	}
	return nil
}

// decodeFields decodes each value of the mapping n (whose keys checkKeys
// has checked) into its target, naming the key of a value of the wrong kind.
func decodeFields(n *yaml.Node, targets map[string]any) error {
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if err := v.Decode(targets[k]); err != nil {
			want := map[string]string{"*int": "an integer", "*int64": "an integer", "*float64": "a number", "*bool": "true or false",
				"*string": "a string", "*map[string]string": "a mapping of parameter names to values", "*[]yaml.Node": "a list"}[fmt.Sprintf("%T", targets[k])]
			return fmt.Errorf("%s: line %d: %q is not %s", k, v.Line, v.Value, want)
		}
	}
	return nil
}

type rawModel struct {
	Description, Backend, StepTime, DefaultResolution string
	Params                                            map[string]string
	FrameAlign, MaxWindow, Steps, FPS, AudioRate      int
	Guidance, Shift                                   float64
	GPUMemoryMiB                                      int64
	AnySize, TalkingHead                              bool
	Resolutions                                       []yaml.Node
}

func parseModel(n *yaml.Node) (Model, error) {
	if err := checkKeys(n, modelKeys); err != nil {
		return Model{}, err
	}
	var r rawModel
	if err := decodeFields(n, map[string]any{"description": &r.Description, "backend": &r.Backend, "params": &r.Params,
		"frame_align": &r.FrameAlign, "max_window": &r.MaxWindow, "steps": &r.Steps, "guidance": &r.Guidance, "shift": &r.Shift,
		"fps": &r.FPS, "gpu_memory_mib": &r.GPUMemoryMiB, "audio_sample_rate": &r.AudioRate, "talking_head": &r.TalkingHead,
		"step_time":          &r.StepTime,
		"default_resolution": &r.DefaultResolution, "any_size": &r.AnySize, "resolutions": &r.Resolutions}); err != nil {
		return Model{}, err
	}
	m := Model{Description: strings.TrimSpace(r.Description), Backend: r.Backend, Params: r.Params, Align: r.FrameAlign,
		MaxWindow: r.MaxWindow, Steps: r.Steps, Guidance: float32(r.Guidance), Shift: float32(r.Shift), FPS: r.FPS,
		AudioSampleRate: r.AudioRate, TalkingHead: r.TalkingHead, DefaultResolution: r.DefaultResolution, AnySize: r.AnySize}
	if m.Params == nil {
		m.Params = map[string]string{}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case m.Description == "":
		return Model{}, errors.New("description: empty; say what the model is")
	case !ident.Valid(m.Backend):
		return Model{}, fmt.Errorf("backend: %q is not allowed; want a backend name such as ref, sim, python or cuda", m.Backend)
	case r.FrameAlign < 1 || r.FrameAlign > MaxFrameAlign:
		return Model{}, fmt.Errorf("frame_align: %d is not allowed; want 1..%d", r.FrameAlign, MaxFrameAlign)
	case r.MaxWindow < MinWindow || r.MaxWindow > MaxWindow:
		return Model{}, fmt.Errorf("max_window: %d is not allowed; want %d..%d frames", r.MaxWindow, MinWindow, MaxWindow)
	case !aligned(r.MaxWindow, r.FrameAlign):
		return Model{}, fmt.Errorf("max_window: %d is not ≡ 1 (mod frame_align %d)", r.MaxWindow, r.FrameAlign)
	case r.Steps < MinSteps || r.Steps > MaxSteps:
		return Model{}, fmt.Errorf("steps: %d is not allowed; want %d..%d", r.Steps, MinSteps, MaxSteps)
	case !finite(r.Guidance) || r.Guidance < 0 || r.Guidance > MaxGuidance:
		return Model{}, fmt.Errorf("guidance: %v is not allowed; want 0..%d, finite", r.Guidance, MaxGuidance)
	case !finite(r.Shift) || r.Shift < 0 || r.Shift > MaxShift:
		return Model{}, fmt.Errorf("shift: %v is not allowed; want 0..%d, finite (0: none)", r.Shift, MaxShift)
	case r.FPS < MinFPS || r.FPS > MaxFPS:
		return Model{}, fmt.Errorf("fps: %d is not allowed; want %d..%d", r.FPS, MinFPS, MaxFPS)
	case r.GPUMemoryMiB < 0 || r.GPUMemoryMiB > MaxGPUMemoryMiB:
		return Model{}, fmt.Errorf("gpu_memory_mib: %d is not allowed; want 0..%d (0: a CPU model)", r.GPUMemoryMiB, MaxGPUMemoryMiB)
	case r.AudioRate != 0 && (r.AudioRate < MinAudioRate || r.AudioRate > MaxAudioRate):
		return Model{}, fmt.Errorf("audio_sample_rate: %d is not allowed; want 0 (no audio) or %d..%d Hz", r.AudioRate, MinAudioRate, MaxAudioRate)
	case r.TalkingHead && r.AudioRate == 0:
		return Model{}, errors.New("talking_head: true is not allowed with audio_sample_rate 0; a talking-head model speaks audio at a rate")
	}
	m.GPUMemoryMiB = uint64(r.GPUMemoryMiB)
	st, err := time.ParseDuration(r.StepTime)
	if err != nil || st < 0 || st > MaxStepTime {
		return Model{}, fmt.Errorf("step_time: %q is not allowed; want a duration 0s..%v, e.g. 2s", r.StepTime, MaxStepTime)
	}
	m.StepTime = st
	for k, v := range m.Params {
		switch {
		case k == "" || strings.ContainsAny(k, "=;\x00"):
			return Model{}, fmt.Errorf("params: key %q is not allowed; want a non-empty key without '=', ';' or NUL", k)
		case strings.ContainsAny(v, ";\x00"):
			return Model{}, fmt.Errorf("params: %s: value %q is not allowed; ';' and NUL are not", k, v)
		case k == "shift":
			return Model{}, errors.New("params: shift is the model's field shift, not a parameter")
		}
	}
	if len(r.Resolutions) == 0 {
		return Model{}, errors.New("resolutions: empty; list at least one")
	}
	for i := range r.Resolutions {
		res, err := parseResolution(&r.Resolutions[i], m)
		if err != nil {
			return Model{}, fmt.Errorf("resolutions[%d]: %w", i, err)
		}
		for _, o := range m.Resolutions {
			if o.Name == res.Name || (o.Width == res.Width && o.Height == res.Height) {
				return Model{}, fmt.Errorf("resolutions[%d]: %s (%s) repeats the name or size of %s (%s)", i, res.Name, res.Size(), o.Name, o.Size())
			}
		}
		m.Resolutions = append(m.Resolutions, res)
	}
	if _, ok := m.Resolution(m.DefaultResolution); !ok {
		return Model{}, fmt.Errorf("default_resolution: %q is not one of the model's resolutions (%s)", m.DefaultResolution,
			strings.Join(resolutionNames(m), ", "))
	}
	return m, nil
}

func parseResolution(n *yaml.Node, m Model) (Resolution, error) {
	if err := checkKeys(n, resolutionKeys); err != nil {
		return Resolution{}, err
	}
	var r Resolution
	if err := decodeFields(n, map[string]any{"name": &r.Name, "width": &r.Width, "height": &r.Height, "window": &r.Window,
		"overlap": &r.Overlap}); err != nil {
		return Resolution{}, err
	}
	res := r
	long, short := max(r.Width, r.Height), min(r.Width, r.Height)
	switch {
	case !ident.Valid(r.Name):
		return Resolution{}, fmt.Errorf("name: %q is not allowed; want %s", r.Name, nameAllowed)
	case r.Width%2 != 0 || r.Height%2 != 0 || short < MinSide || long > MaxLongSide || short > MaxShortSide:
		return Resolution{}, fmt.Errorf("%s: %s is not allowed; want even sides, %d..%d on the long side and %d..%d on the short side",
			r.Name, res.Size(), MinSide, MaxLongSide, MinSide, MaxShortSide)
	case r.Window < MinWindow || r.Window > m.MaxWindow:
		return Resolution{}, fmt.Errorf("%s: window %d is not allowed; want %d..max_window %d", r.Name, r.Window, MinWindow, m.MaxWindow)
	case r.Overlap < 1 || r.Overlap >= r.Window:
		return Resolution{}, fmt.Errorf("%s: overlap %d is not allowed; want 1..window-1 (%d)", r.Name, r.Overlap, r.Window-1)
	case !aligned(r.Window, m.Align) || !aligned(r.Overlap, m.Align):
		return Resolution{}, fmt.Errorf("%s: window %d and overlap %d must be ≡ 1 (mod frame_align %d)", r.Name, r.Window, r.Overlap, m.Align)
	}
	return res, nil
}

func aligned(frames, align int) bool { return align <= 1 || (frames-1)%align == 0 }

func resolutionNames(m Model) []string {
	out := make([]string, len(m.Resolutions))
	for i, r := range m.Resolutions {
		out[i] = r.Name
	}
	return out
}
