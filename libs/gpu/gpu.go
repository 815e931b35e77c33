package gpu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// ErrNotFound is returned for a GPU the manager does not hold.
var ErrNotFound = errors.New("gpu not found")

// GPU is one visible device.
type GPU struct {
	Index       int    // NVML index
	UUID        string // e.g. "GPU-5d1c…"
	Name        string // product name, e.g. "NVIDIA H100 80GB HBM3"
	MemoryTotal uint64 // bytes
}

// Stats is a reading of one GPU.
type Stats struct {
	UUID           string
	UtilizationPct uint32  // GPU busy time over the last sample period, percent
	MemoryUsed     uint64  // bytes
	MemoryFree     uint64  // bytes
	MemoryTotal    uint64  // bytes
	TemperatureC   uint32  // degrees Celsius
	PowerW         float64 // watts
}

// Manager holds NVML open and the visible GPUs.
type Manager struct {
	lib     nvml.Interface
	gpus    []GPU
	devices map[string]nvml.Device
}

// Open initialises NVML and lists the visible GPUs. A machine without the
// NVML library yields a Manager with no GPU and a nil error.
func Open(opts ...Option) (*Manager, error) {
	o := options{}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if !o.visibleSet {
		o.visible, o.visibleSet = visibleFromEnv()
	}
	if o.lib == nil {
		o.lib = nvml.New()
	}
	m := &Manager{devices: map[string]nvml.Device{}}
	switch ret := o.lib.Init(); ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED, nvml.ERROR_NO_PERMISSION:
		return m, nil // no NVML here: CPU slots
	default:
		return nil, fmt.Errorf("gpu: nvml init: %w", nvmlErr(ret))
	}
	m.lib = o.lib
	all, err := m.list()
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	if m.gpus, err = selectVisible(all, o.visible, o.visibleSet); err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

// Available reports whether NVML is loaded.
func (m *Manager) Available() bool { return m.lib != nil }

// GPUs returns the visible GPUs in the order the visibility list gives them.
func (m *Manager) GPUs() []GPU { return append([]GPU(nil), m.gpus...) }

// Stats reads the GPU with the given UUID.
func (m *Manager) Stats(uuid string) (Stats, error) {
	d, ok := m.devices[uuid]
	if !ok {
		return Stats{}, fmt.Errorf("gpu: stats of %q: %w", uuid, ErrNotFound)
	}
	s := Stats{UUID: uuid}
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return Stats{}, fmt.Errorf("gpu: memory of %s: %w", uuid, nvmlErr(ret))
	}
	s.MemoryUsed, s.MemoryFree, s.MemoryTotal = mem.Used, mem.Free, mem.Total
	// Utilisation, temperature and power are not supported on every device
	// (or in every mock); a reading that fails stays zero.
	if u, ret := d.GetUtilizationRates(); ret == nvml.SUCCESS {
		s.UtilizationPct = u.Gpu
	}
	if t, ret := d.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
		s.TemperatureC = t
	}
	if p, ret := d.GetPowerUsage(); ret == nvml.SUCCESS {
		s.PowerW = float64(p) / 1000
	}
	return s, nil
}

// Close shuts NVML down. It is safe to call on a manager without NVML.
func (m *Manager) Close() error {
	if m.lib == nil {
		return nil
	}
	lib := m.lib
	m.lib = nil
	if ret := lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("gpu: nvml shutdown: %w", nvmlErr(ret))
	}
	return nil
}

func (m *Manager) list() ([]GPU, error) {
	n, ret := m.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("gpu: device count: %w", nvmlErr(ret))
	}
	out := make([]GPU, 0, n)
	for i := range n {
		d, ret := m.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu: device %d: %w", i, nvmlErr(ret))
		}
		g := GPU{Index: i}
		if g.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu: uuid of device %d: %w", i, nvmlErr(ret))
		}
		if g.Name, ret = d.GetName(); ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu: name of device %d: %w", i, nvmlErr(ret))
		}
		mem, ret := d.GetMemoryInfo()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("gpu: memory of device %d: %w", i, nvmlErr(ret))
		}
		g.MemoryTotal = mem.Total
		m.devices[g.UUID] = d
		out = append(out, g)
	}
	return out, nil
}

// selectVisible applies a CUDA_VISIBLE_DEVICES-style list to all.
func selectVisible(all []GPU, list string, set bool) ([]GPU, error) {
	if !set || strings.TrimSpace(list) == "all" {
		return all, nil
	}
	out := []GPU{}
	seen := map[int]bool{}
	for _, raw := range strings.Split(list, ",") {
		entry := strings.TrimSpace(raw)
		if entry == "" || entry == "none" || entry == "void" || entry == "NoDevFiles" {
			continue
		}
		g, err := lookup(all, entry)
		if err != nil {
			return nil, err
		}
		if !seen[g.Index] {
			seen[g.Index] = true
			out = append(out, g)
		}
	}
	return out, nil
}

func lookup(all []GPU, entry string) (GPU, error) {
	if i, err := strconv.Atoi(entry); err == nil {
		for _, g := range all {
			if g.Index == i {
				return g, nil
			}
		}
		return GPU{}, fmt.Errorf("gpu: visible device %d: %w (this node has %d GPUs)", i, ErrNotFound, len(all))
	}
	if strings.HasPrefix(entry, "MIG-") {
		return GPU{}, fmt.Errorf("gpu: visible device %q: MIG instances are not supported; list whole GPUs by index or UUID", entry)
	}
	var found []GPU
	for _, g := range all {
		if strings.HasPrefix(g.UUID, entry) {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return GPU{}, fmt.Errorf("gpu: visible device %q: %w: give an index or a GPU UUID (prefix)", entry, ErrNotFound)
	default:
		return GPU{}, fmt.Errorf("gpu: visible device %q: the UUID prefix matches %d GPUs", entry, len(found))
	}
}

// nvmlErr turns an NVML return code into an error.
func nvmlErr(ret nvml.Return) error { return fmt.Errorf("nvml: %s", nvml.ErrorString(ret)) }
