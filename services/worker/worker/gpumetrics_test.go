package worker_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestGPUMetrics: on a DGX H100 (NVML mock) with GPUs 1 and 4 visible, the
// worker reports utilisation, memory, temperature and power per GPU.
func TestGPUMetrics(t *testing.T) {
	e := newEnv(t)
	srv := dgxh100.New()
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: uint32(10 * i)}, nvml.SUCCESS }
		dev.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
			return nvml.Memory{Total: 80 << 30, Used: uint64(i) << 30, Free: (80 - uint64(i)) << 30}, nvml.SUCCESS
		}
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return uint32(40 + i), nvml.SUCCESS }
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return uint32(300000 + i), nvml.SUCCESS }
	}
	gpus, err := gpu.Open(gpu.WithLibrary(srv), gpu.WithVisibleDevices("1,4"))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	w, err := worker.New(worker.Config{ID: "gm-" + e.pool[:6], Pool: e.pool, Backend: "sim", Slots: 1, Heartbeat: time.Second},
		e.bus, e.blob, gpus, slog.New(slog.NewTextHandler(io.Discard, nil)), worker.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e.run(t, "worker", w.Run)
	want := map[string]map[int]float64{ // metric → GPU index → value
		worker.MetricGPUUtil:     {1: 0.1, 4: 0.4},
		worker.MetricGPUMemUsed:  {1: 1 << 30, 4: 4 << 30},
		worker.MetricGPUMemTotal: {1: 80 << 30, 4: 80 << 30},
		worker.MetricGPUTemp:     {1: 41, 4: 44},
		worker.MetricGPUPower:    {1: 300.001, 4: 300.004},
	}
	got := map[string]map[int]float64{}
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				g, ok := m.Data.(metricdata.Gauge[float64])
				if _, wanted := want[m.Name]; !ok || !wanted {
					continue
				}
				got[m.Name] = map[int]float64{}
				for _, dp := range g.DataPoints {
					idx, _ := dp.Attributes.Value("gpu.index")
					got[m.Name][int(idx.AsInt64())] = dp.Value
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, byGPU := range want {
		for idx, v := range byGPU {
			if g := got[name][idx]; g < v-1e-6 || g > v+1e-6 || len(got[name]) != 2 {
				t.Errorf("%s of GPU %d = %v (%d GPUs), want %v", name, idx, g, len(got[name]), v)
			}
		}
	}
}
