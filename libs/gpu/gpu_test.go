package gpu_test

import (
	"errors"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	nvmlmock "github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/spoolvideo/spool/libs/gpu"
)

func TestDiscoverDGXH100(t *testing.T) {
	m, err := gpu.Open(gpu.WithLibrary(machine()), gpu.WithVisibleDevices("all"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	gs := m.GPUs()
	if !m.Available() || len(gs) != 8 {
		t.Fatalf("available %v, %d GPUs; want 8", m.Available(), len(gs))
	}
	for i, g := range gs {
		if g.Index != i || g.UUID == "" || g.Name == "" || g.MemoryTotal < 80e9 {
			t.Fatalf("GPU %d: %+v", i, g)
		}
	}
	s, err := m.Stats(gs[3].UUID)
	if err != nil || s.MemoryTotal != gs[3].MemoryTotal {
		t.Fatalf("stats %+v %v", s, err)
	}
}

func TestStatsReadings(t *testing.T) {
	srv := machine()
	dev := srv.Devices[0].(*server.Device)
	dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 87}, nvml.SUCCESS }
	dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 64, nvml.SUCCESS }
	dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 412500, nvml.SUCCESS }
	m, err := gpu.Open(gpu.WithLibrary(srv), gpu.WithVisibleDevices("0"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Stats(m.GPUs()[0].UUID)
	if err != nil {
		t.Fatal(err)
	}
	if s.UtilizationPct != 87 || s.TemperatureC != 64 || s.PowerW != 412.5 {
		t.Fatalf("stats %+v", s)
	}
	if _, err := m.Stats("GPU-nope"); !errors.Is(err, gpu.ErrNotFound) {
		t.Fatalf("unknown uuid: %v", err)
	}
}

func TestVisibleDevices(t *testing.T) {
	// The mock draws new UUIDs per machine, so every case uses this one.
	srv := machine()
	all, _ := gpu.Open(gpu.WithLibrary(srv), gpu.WithVisibleDevices("all"))
	uuids := []string{}
	for _, g := range all.GPUs() {
		uuids = append(uuids, g.UUID)
	}
	cases := []struct {
		list    string
		want    []int
		wantErr bool
	}{
		{"", []int{}, false},
		{"none", []int{}, false},
		{"3", []int{3}, false},
		{"5, 1,5", []int{5, 1}, false},
		{uuids[6], []int{6}, false},
		{uuids[2][:16] + "," + "0", []int{2, 0}, false},
		{"8", nil, true},
		{"GPU-zzzz", nil, true},
		{"MIG-1234", nil, true},
	}
	for _, c := range cases {
		m, err := gpu.Open(gpu.WithLibrary(srv), gpu.WithVisibleDevices(c.list))
		if c.wantErr {
			if err == nil {
				t.Errorf("%q: accepted", c.list)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.list, err)
		}
		got := []int{}
		for _, g := range m.GPUs() {
			got = append(got, g.Index)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%q: got %v want %v", c.list, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%q: got %v want %v", c.list, got, c.want)
			}
		}
	}
}

func TestEnvironmentVisibility(t *testing.T) {
	t.Setenv("CUDA_VISIBLE_DEVICES", "1,2")
	m, err := gpu.Open(gpu.WithLibrary(machine()))
	if err != nil || len(m.GPUs()) != 2 {
		t.Fatalf("CUDA_VISIBLE_DEVICES: %v %v", m, err)
	}
	t.Setenv("SPOOL_WORKER_GPUS", "4")
	m, err = gpu.Open(gpu.WithLibrary(machine()))
	if err != nil || len(m.GPUs()) != 1 || m.GPUs()[0].Index != 4 {
		t.Fatalf("SPOOL_WORKER_GPUS wins: %v %v", m, err)
	}
}

// TestNoNVML: a machine without the library is an ordinary CPU machine.
func TestNoNVML(t *testing.T) {
	lib := &nvmlmock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	m, err := gpu.Open(gpu.WithLibrary(lib))
	if err != nil || m.Available() || len(m.GPUs()) != 0 || m.Close() != nil {
		t.Fatalf("no NVML: %v %v", m, err)
	}
	// And the real library on this machine, which may well have no GPU.
	real, err := gpu.Open()
	if err != nil {
		t.Fatalf("real NVML: %v", err)
	}
	t.Logf("this machine: NVML available %v, %d GPUs", real.Available(), len(real.GPUs()))
	_ = real.Close()
}

func TestInitFailureIsAnError(t *testing.T) {
	lib := &nvmlmock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_UNKNOWN }}
	if _, err := gpu.Open(gpu.WithLibrary(lib)); err == nil {
		t.Fatal("an NVML failure other than a missing library must be an error")
	}
}

// machine is a DGX H100 whose devices answer the telemetry readings the
// stock mock leaves unset: NOT_SUPPORTED, as many real boards do.
func machine() *server.Server {
	srv := dgxh100.New()
	for _, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	}
	return srv
}
