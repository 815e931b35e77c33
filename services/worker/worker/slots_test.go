package worker_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// TestSlotPerGPU: on a DGX H100 (NVML mock) a GPU backend gets one slot per
// visible GPU, and the registry lists them; ref stays on CPU slots.
func TestSlotPerGPU(t *testing.T) {
	e := newEnv(t)
	srv := dgxh100.New()
	for _, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
	}
	gpus, err := gpu.Open(gpu.WithLibrary(srv), gpu.WithVisibleDevices("0,2,5"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{ID: "dgx-" + e.pool[:6], Pool: e.pool, Backend: "sim", Slots: 1, Heartbeat: time.Second,
		Register: 50 * time.Millisecond}, e.bus, e.blob, gpus, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e.run(t, "worker", w.Run)
	e.waitWorker(t, "dgx-"+e.pool[:6], "three GPU slots", func(info *spoolv1.WorkerInfo) bool {
		return info.Slots == 3 && len(info.Gpus) == 3 && info.Gpus[1].Index == 2 && strings.Contains(info.Gpus[0].Name, "H100")
	})
	ref, err := worker.New(worker.Config{ID: "ref-" + e.pool[:6], Pool: e.pool, Backend: "ref", Slots: 2, Heartbeat: time.Second},
		e.bus, e.blob, gpus, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("ref on a GPU node: %v", err)
	}
	ref.Close()
}

// TestCancelMidSegment: cancelling a job stops its running segment at once.
func TestCancelMidSegment(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	w, err := worker.New(worker.Config{ID: "c-" + e.pool[:6], Pool: e.pool, Backend: "sim", Params: "step_ms=100", Slots: 1,
		Heartbeat: time.Second, Register: 50 * time.Millisecond}, e.bus, e.blob, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e.run(t, "worker", w.Run)
	id := e.submit(t, `{"id":"cancel-mid","prompt":"x","durationFrames":9,"windowFrames":9,"overlapFrames":4,"model":"sim",`+
		`"width":64,"height":64,"steps":200,"fps":24,"pool":"`+e.pool+`"}`)
	e.waitWorker(t, "c-"+e.pool[:6], "the segment running", func(info *spoolv1.WorkerInfo) bool { return len(info.CurrentTasks) == 1 })
	start := time.Now()
	if _, err := e.bus.Conn().Request("jobs.cancel", []byte(id), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	e.waitWorker(t, "c-"+e.pool[:6], "the segment stopped", func(info *spoolv1.WorkerInfo) bool { return len(info.CurrentTasks) == 0 })
	if time.Since(start) > 3*time.Second {
		t.Fatal("the running segment was not stopped by the cancel (200 steps × 100 ms would take 20 s)")
	}
	j, _ := e.store.GetJob(context.Background(), id)
	a, _ := e.store.ListAttempts(context.Background(), id, 0)
	if j.State != store.JobCancelled || len(a) != 1 || a[0].Outcome != store.OutcomeFailed || a[0].ErrorClass != "ERROR_CLASS_CANCELLED" {
		time.Sleep(300 * time.Millisecond)
		a, _ = e.store.ListAttempts(context.Background(), id, 0)
		if len(a) != 1 || a[0].ErrorClass != "ERROR_CLASS_CANCELLED" {
			t.Fatalf("job %s, attempts %+v", j.State, a)
		}
	}
}

// waitWorker polls the worker's registration until cond holds.
func (e *env) waitWorker(t *testing.T, id, what string, cond func(*spoolv1.WorkerInfo) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if kv, err := e.bus.Workers(context.Background()); err == nil {
			if entry, err := kv.Get(context.Background(), e.pool+"."+id); err == nil {
				if info, err := bus.DecodeWorkerInfo(entry.Value()); err == nil && cond(info) {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("worker %s: never saw %s", id, what)
}

// TestGPUMemoryGate: a GPU slot with less free memory than the model needs
// does not take a task; once memory frees up it does.
func TestGPUMemoryGate(t *testing.T) {
	e := newEnv(t)
	e.startDispatcher(t)
	srv := dgxh100.New()
	var free atomic.Uint64
	free.Store(1 << 30) // 1 GiB free of 80
	dev := srv.Devices[0].(*server.Device)
	dev.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		return nvml.Memory{Total: 80 << 30, Free: free.Load(), Used: 80<<30 - free.Load()}, nvml.SUCCESS
	}
	dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }
	dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	dev.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	gpus, err := gpu.Open(gpu.WithLibrary(srv), gpu.WithVisibleDevices("0"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{ID: "m-" + e.pool[:6], Pool: e.pool, Backend: "sim", Slots: 1, Heartbeat: time.Second,
		MinFreeMiB: 16 << 10}, e.bus, e.blob, gpus, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e.run(t, "worker", w.Run)
	id := e.submit(t, `{"id":"mem-`+e.pool[:5]+`","prompt":"x","durationFrames":9,"windowFrames":9,"overlapFrames":4,"model":"sim",`+
		`"width":64,"height":64,"steps":2,"fps":24,"pool":"`+e.pool+`"}`)
	time.Sleep(1500 * time.Millisecond)
	if segs, _ := e.store.ListSegments(context.Background(), id); len(segs) != 1 || segs[0].State != store.SegQueued {
		t.Fatalf("the task was taken without the memory: %+v", segs)
	}
	free.Store(40 << 30)
	e.waitDone(t, id)
}
