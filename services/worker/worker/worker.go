package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/infer"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Worker is one worker process: a slot per GPU, or Slots CPU slots.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	bus   *bus.Bus
	blob  *blob.Store
	node  string
	slots []*slot
	gpus  *gpu.Manager

	mu      sync.Mutex
	running map[string]map[string]context.CancelFunc // job → slot → cancels its segment
	tasks   map[string]string                        // slot → its task, for the registry
}

// slot is one engine, kept warm, running one segment at a time.
type slot struct {
	id     string
	gpu    gpu.GPU
	engine *infer.Engine
}

// New opens an engine per slot: one per visible GPU (NVML), or cfg.Slots
// CPU slots when there is none or the backend is ref (CPU only).
func New(cfg Config, b *bus.Bus, bl *blob.Store, gpus *gpu.Manager, log *slog.Logger) (*Worker, error) {
	if cfg.Register == 0 {
		cfg.Register = 10 * time.Second
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	if cfg.Node == "" {
		cfg.Node = host
	}
	if cfg.ID == "" {
		cfg.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}

	w := &Worker{cfg: cfg, log: log, bus: b, blob: bl, node: cfg.Node, gpus: gpus, running: map[string]map[string]context.CancelFunc{}}
	devices := []gpu.GPU{}
	if gpus != nil && cfg.Backend != "ref" {
		devices = gpus.GPUs()
	}
	n := len(devices)
	if n == 0 {
		n = cfg.Slots
	}
	for i := range n {
		opts := []infer.Option{infer.WithModel(cfg.Model), infer.WithParams(cfg.Params), infer.WithPluginDir(cfg.PluginDir),
			infer.WithWeightsDir(cfg.Weights)}
		s := &slot{id: fmt.Sprintf("%s/%d", cfg.ID, i)}
		if i < len(devices) {
			s.gpu = devices[i]
			opts = append(opts, infer.WithDevice(devices[i].Index))
		}
		e, err := infer.Open(cfg.Backend, opts...)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("worker: slot %d: %w", i, err)
		}
		s.engine = e
		w.slots = append(w.slots, s)
	}
	return w, nil
}

// Close frees the engines.
func (w *Worker) Close() {
	for _, s := range w.slots {
		_ = s.engine.Close()
	}
}

// Run runs every slot until ctx ends; a slot then finishes its segment.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.bus.Declare(ctx); err != nil { // idempotent: streams, consumers, the workers bucket
		return err
	}
	c, err := w.bus.DeclarePool(ctx, w.cfg.Pool)
	if err != nil {
		return err
	}
	sub, err := w.bus.Conn().Subscribe(bus.SubjectAllCancels, w.onCancel)
	if err != nil {
		return fmt.Errorf("worker: subscribe to cancellations: %w", err)
	}
	defer sub.Unsubscribe()
	var wg sync.WaitGroup
	regCtx, stopReg := context.WithCancel(context.WithoutCancel(ctx))
	regDone := make(chan struct{})
	go func() { defer close(regDone); _ = w.register(regCtx) }()
	defer func() { stopReg(); <-regDone }() // deregister once every slot is done
	for _, s := range w.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.slotLoop(ctx, s, c)
		}()
	}
	wg.Wait()
	return nil
}

func (w *Worker) onCancel(m *nats.Msg) {
	job := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cancel := range w.running[job] {
		cancel()
	}
}

// slotLoop fetches exactly one task at a time and runs it. A GPU slot whose
// free memory is below the model's need does not fetch: another worker's
// process may hold the GPU, and a task taken now would only fail.
func (w *Worker) slotLoop(ctx context.Context, s *slot, c jetstream.Consumer) {
	for ctx.Err() == nil {
		if !w.roomFor(s) {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		m, err := bus.FetchOne(ctx, c, time.Second)
		if err != nil {
			if !errors.Is(err, bus.ErrNoMessage) && ctx.Err() == nil {
				w.log.Warn("fetch", "slot", s.id, "err", err)
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		w.handle(ctx, s, m)
	}
}

// handle runs one task and settles its message: ack after DONE; Term plus
// FAILED for a task that can never succeed; FAILED(cancelled) plus ack for a
// cancelled job; Nak with a delay for anything transient.
func (w *Worker) handle(ctx context.Context, s *slot, m jetstream.Msg) {
	task, err := bus.DecodeTask(m.Data())
	if err != nil {
		w.log.Error("dropping an undecodable task", "err", err)
		_ = m.Term()
		return
	}
	// The segment outlives a shutdown request: drain lets it finish.
	runCtx, cancel := context.WithCancel(bus.ContextFromMsg(context.WithoutCancel(ctx), m))
	defer cancel()
	w.mu.Lock()
	if w.running[task.JobId] == nil {
		w.running[task.JobId] = map[string]context.CancelFunc{}
	}
	w.running[task.JobId][s.id] = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running[task.JobId], s.id)
		if len(w.running[task.JobId]) == 0 {
			delete(w.running, task.JobId)
		}
		w.mu.Unlock()
	}()
	hbDone := make(chan struct{})
	var handedBack atomic.Bool
	go func() { // AckProgress keeps the task ours while it runs
		t := time.NewTicker(w.cfg.Heartbeat)
		defer t.Stop()
		shutdown := ctx.Done()
		var drain <-chan time.Time
		for {
			select {
			case <-hbDone:
				return
			case <-t.C:
				_ = m.InProgress()
			case <-shutdown: // draining: give the segment Drain to finish
				shutdown, drain = nil, time.After(w.cfg.Drain)
			case <-drain:
				handedBack.Store(true)
				cancel()
			}
		}
	}()
	w.setTask(s, task)
	err = w.runSegment(runCtx, s, m, task)
	w.setTask(s, nil)
	close(hbDone)
	switch {
	case handedBack.Load():
		w.log.Info("drain timeout: segment handed back", "job", task.JobId, "segment", task.Index)
		_ = m.Nak() // immediate redelivery to another worker
	case err == nil:
		_ = m.Ack()
	case errors.Is(err, errPermanent):
		w.fail(ctx, s, task, spoolv1.ErrorClass_ERROR_CLASS_PERMANENT, err)
		_ = m.Term()
	case errors.Is(err, infer.ErrCancelled) && runCtx.Err() != nil:
		w.fail(ctx, s, task, spoolv1.ErrorClass_ERROR_CLASS_CANCELLED, err)
		_ = m.Ack()
	default:
		w.log.Warn("segment failed; it will be redelivered", "job", task.JobId, "segment", task.Index, "err", err)
		_ = m.NakWithDelay(2 * time.Second)
	}
}

func (w *Worker) fail(ctx context.Context, s *slot, t *spoolv1.SegmentTask, class spoolv1.ErrorClass, err error) {
	r := w.result(s, t, spoolv1.Phase_PHASE_FAILED)
	r.ErrorClass, r.ErrorMessage = class, err.Error()
	if _, perr := w.bus.PublishResult(context.WithoutCancel(ctx), r); perr != nil {
		w.log.Error("publish FAILED", "job", t.JobId, "segment", t.Index, "err", perr)
	}
}

// roomFor reports whether the slot's GPU has the free memory the model needs.
func (w *Worker) roomFor(s *slot) bool {
	if w.cfg.MinFreeMiB == 0 || s.gpu.UUID == "" || w.gpus == nil {
		return true
	}
	st, err := w.gpus.Stats(s.gpu.UUID)
	if err != nil {
		w.log.Warn("gpu stats", "gpu", s.gpu.UUID, "err", err)
		return false
	}
	if st.MemoryFree < w.cfg.MinFreeMiB<<20 {
		w.log.Info("waiting for GPU memory", "gpu", s.gpu.UUID, "free_mib", st.MemoryFree>>20, "need_mib", w.cfg.MinFreeMiB)
		return false
	}
	return true
}
