package gateway

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// resolutionView is a model's resolution: its size and default window and
// overlap (frames) there.
type resolutionView struct {
	Name    string `json:"name"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Window  int    `json:"window"`
	Overlap int    `json:"overlap"`
}

// modelView is a model of the catalog and the pools that serve it.
type modelView struct {
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	Backend           string            `json:"backend"`
	FrameAlign        int               `json:"frame_align"`
	MaxWindow         int               `json:"max_window"`
	Steps             int               `json:"steps"`
	Guidance          float32           `json:"guidance"`
	Shift             float32           `json:"shift"`
	FPS               int               `json:"fps"`
	GPUMemoryMiB      uint64            `json:"gpu_memory_mib"`
	AudioSampleRate   int               `json:"audio_sample_rate"` // Hz of the audio it takes; 0 for none
	TalkingHead       bool              `json:"talking_head"`      // it animates a reference speaking the audio
	StepTimeMS        int64             `json:"step_time_ms"`
	DefaultResolution string            `json:"default_resolution"`
	AnySize           bool              `json:"any_size"`
	Resolutions       []resolutionView  `json:"resolutions"`
	Params            map[string]string `json:"params"`
	Pools             []string          `json:"pools"` // the pools that serve it, in declaration order
}

// poolView is a pool, the models it serves and its live workers.
type poolView struct {
	Name    string   `json:"name"`
	Models  []string `json:"models"`
	Workers []string `json:"workers"` // ids of its registered workers
}

type gpuView struct {
	Index       uint32 `json:"index"`
	UUID        string `json:"uuid"`
	Name        string `json:"name"`
	MemoryBytes uint64 `json:"memory_bytes"`
}

// workerView is a registered worker. Lacks lists the models its pool serves
// that it has not loaded: tasks of those fail on it, a misconfiguration.
type workerView struct {
	ID           string    `json:"id"`
	Node         string    `json:"node"`
	Pool         string    `json:"pool"`
	Backend      string    `json:"backend"`
	Models       []string  `json:"models"`
	Lacks        []string  `json:"lacks,omitempty"`
	Slots        uint32    `json:"slots"`
	GPUs         []gpuView `json:"gpus"`
	CurrentTasks []string  `json:"current_tasks"`
}

// modelsInfo lists the catalog's models with their per-resolution
// defaults, the pools with the models they serve and their live workers,
// and every live worker with its models and GPUs (the spool_workers
// registry).
func (g *Gateway) modelsInfo(w http.ResponseWriter, r *http.Request) {
	infos, err := g.workers(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Catalog string       `json:"catalog"` // the catalog file, or "shipped"
		Models  []modelView  `json:"models"`
		Pools   []poolView   `json:"pools"`
		Workers []workerView `json:"workers"`
	}{Catalog: cmp.Or(g.cfg.Catalog.File, "shipped"), Models: []modelView{}, Pools: []poolView{}, Workers: []workerView{}}
	for _, name := range g.catalog.Names() {
		m := g.catalog.Models[name]
		mv := modelView{Name: m.Name, Description: m.Description, Backend: m.Backend, FrameAlign: m.Align, MaxWindow: m.MaxWindow,
			Steps: m.Steps, Guidance: m.Guidance, Shift: m.Shift, FPS: m.FPS, GPUMemoryMiB: m.GPUMemoryMiB,
			AudioSampleRate: m.AudioSampleRate, TalkingHead: m.TalkingHead, StepTimeMS: m.StepTime.Milliseconds(), DefaultResolution: m.DefaultResolution,
			AnySize: m.AnySize, Params: m.Params, Pools: append([]string{}, g.catalog.Pools.Serving(name)...)}
		for _, res := range m.Resolutions {
			mv.Resolutions = append(mv.Resolutions, resolutionView(res))
		}
		out.Models = append(out.Models, mv)
	}
	for _, p := range g.catalog.Pools {
		pv := poolView{Name: p.Name, Models: p.Models, Workers: []string{}}
		for _, info := range infos {
			if info.GetPool() == p.Name {
				pv.Workers = append(pv.Workers, info.GetId())
			}
		}
		out.Pools = append(out.Pools, pv)
	}
	mine, err := g.visibleTasks(r, infos)
	if err != nil {
		fail(w, err)
		return
	}
	for _, info := range infos {
		wv := workerView{ID: info.GetId(), Node: info.GetNode(), Pool: info.GetPool(), Backend: info.GetBackend(), Models: info.GetModels(),
			Slots: info.GetSlots(), GPUs: []gpuView{}, CurrentTasks: []string{}}
		for _, t := range info.GetCurrentTasks() {
			if job, _, _ := strings.Cut(t, "/"); mine(job) {
				wv.CurrentTasks = append(wv.CurrentTasks, t)
			}
		}
		if p, ok := g.catalog.Pools.Get(info.GetPool()); ok {
			for _, m := range p.Models {
				if !slices.Contains(wv.Models, m) {
					wv.Lacks = append(wv.Lacks, m)
				}
			}
		}
		for _, g := range info.GetGpus() {
			wv.GPUs = append(wv.GPUs, gpuView{Index: g.GetIndex(), UUID: g.GetUuid(), Name: g.GetName(), MemoryBytes: g.GetMemoryTotalBytes()})
		}
		out.Workers = append(out.Workers, wv)
	}
	writeJSON(w, http.StatusOK, out)
}

// visibleTasks says which jobs of the workers' current tasks (job/segment)
// the request may see: every one for an admin key, its tenant's for
// another.
func (g *Gateway) visibleTasks(r *http.Request, infos []*spoolv1.WorkerInfo) (func(job string) bool, error) {
	c := callerOf(r)
	if c.Admin {
		return func(string) bool { return true }, nil
	}
	var jobs []string
	for _, info := range infos {
		for _, t := range info.GetCurrentTasks() {
			job, _, _ := strings.Cut(t, "/")
			jobs = append(jobs, job)
		}
	}
	own, err := g.store.TenantJobs(r.Context(), c.Tenant, jobs)
	if err != nil {
		return nil, err
	}
	return func(job string) bool { return slices.Contains(own, job) }, nil
}

// workers reads the spool_workers registry: every live worker, by id.
func (g *Gateway) workers(ctx context.Context) ([]*spoolv1.WorkerInfo, error) {
	kv, err := g.bus.Workers(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []*spoolv1.WorkerInfo
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // expired or deleted since the listing
		}
		if info, err := bus.DecodeWorkerInfo(e.Value()); err == nil {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b *spoolv1.WorkerInfo) int { return strings.Compare(a.GetId(), b.GetId()) })
	return out, nil
}

// registryTTL is how long a job's status may answer from the workers
// registry as it was read before.
const registryTTL = time.Second

// registryCache is the workers registry as last read, and when.
type registryCache struct {
	mu    sync.Mutex
	at    time.Time
	infos []*spoolv1.WorkerInfo
}

// recentWorkers is the workers registry as read at most registryTTL ago.
// Reading it costs several round trips to NATS (a consumer on the bucket,
// a read per worker), which every status of a running job would otherwise
// pay; what a job waits for does not change within a second. Concurrent
// readers of an expired copy each read the registry: none waits on
// another's read.
func (g *Gateway) recentWorkers(ctx context.Context) ([]*spoolv1.WorkerInfo, error) {
	c := &g.recent
	c.mu.Lock()
	if time.Since(c.at) < registryTTL {
		defer c.mu.Unlock()
		return c.infos, nil
	}
	c.mu.Unlock()
	infos, err := g.workers(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.infos, c.at = infos, time.Now()
	return infos, nil
}

// jobRuns is what a job's status says of its models: the models and
// versions that made its committed segments, and, while it is not over,
// why it makes no progress when no live worker can take it.
type jobRuns struct {
	Ran     []store.ModelRun `json:"ran,omitempty"`
	Waiting string           `json:"waiting,omitempty"`
}

// modelStatus adds to a job's view the models and versions that made its
// committed segments, and, while it is not over, what it waits for when no
// live worker of its pool serves its model (a pool may scale from zero).
func (g *Gateway) modelStatus(ctx context.Context, v *jobView, j store.Job) error {
	ran, err := g.store.ModelsRan(ctx, j.ID)
	if err != nil {
		return err
	}
	v.Ran = ran
	if j.State.Terminal() {
		return nil
	}
	infos, err := g.recentWorkers(ctx)
	if err != nil { // the registry is an aid here: the status stands without it
		g.log.Warn("status: the workers registry", "job", j.ID, "err", err)
		return nil
	}
	v.Waiting = waiting(j, infos)
	return nil
}

// waiting says why job j cannot progress given the live workers, or "".
func waiting(j store.Job, infos []*spoolv1.WorkerInfo) string {
	var inPool []string
	for _, info := range infos {
		if info.GetPool() != j.Pool {
			continue
		}
		if slices.Contains(info.GetModels(), j.Model) {
			return ""
		}
		inPool = append(inPool, info.GetId()+" ("+strings.Join(info.GetModels(), ", ")+")")
	}
	if len(inPool) == 0 {
		return fmt.Sprintf("waiting for a worker of pool %s: none is registered (a pool may scale up from zero)", j.Pool)
	}
	return fmt.Sprintf("waiting for a worker of pool %s that serves model %s: its workers serve other models: %s", j.Pool, j.Model,
		strings.Join(inPool, "; "))
}
