package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/metric"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/gpu"
	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/media"
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

	metrics       *metrics
	runCtx        context.Context // Run's: fetches end with it
	encCtx        context.Context // lives until Run returns, drain included: warm encoders
	cancelled     cancelledJobs
	tails         *tailCache
	voids         voidedTails
	codec         media.Codec
	catalog       jobspec.Catalog // SPOOL_CATALOG's: the served models and their step times
	meterProvider metric.MeterProvider

	mu      sync.Mutex
	running map[string]map[string]context.CancelFunc // job → held task → cancels its segment
	changed chan struct{}                            // the held tasks changed: the registry entry is due
	wedge   error                                    // why an engine was given up (ErrEngineWedged), or nil
	stopRun context.CancelCauseFunc                  // ends runCtx: an engine was given up
}

// slot is one engine per served model, kept warm, running one segment at
// a time.
type slot struct {
	id      string
	gpu     gpu.GPU
	engines map[string]*infer.Engine // by model name
	busy    atomic.Int64             // nanoseconds spent inside the engine by finished runs
	since   atomic.Int64             // when the running engine call began (Unix ns), or 0

	prefetch *prefetch    // owned by the slot's loop and its engine's callbacks
	warm     *warmEncoder // an encoder started ahead for the next segment

	wedged    chan struct{} // closed when the slot is given up: a segment did not return after its cancel
	wedgeOnce sync.Once

	segments atomic.Int64 // segments generated and finished
	fetch    atomic.Int64 // ns waiting in fetches that returned a task, summed
	prepare  atomic.Int64 // ns from fetch to engine start, summed
	finish   atomic.Int64 // ns from engine end to DONE published, summed
}

// busyNow is the slot's engine time, the running call included.
func (s *slot) busyNow() time.Duration {
	d := time.Duration(s.busy.Load())
	if t := s.since.Load(); t != 0 {
		d += time.Since(time.Unix(0, t))
	}
	return d
}

// New opens, per slot, an engine of every model the worker serves (see
// Config.Models): a slot per visible GPU (NVML), or cfg.Slots CPU slots
// when there is none or every model runs on the ref backend (CPU only).
func New(cfg Config, b *bus.Bus, bl *blob.Store, gpus *gpu.Manager, log *slog.Logger, opts ...Option) (*Worker, error) {
	if cfg.Register == 0 {
		cfg.Register = 10 * time.Second
	}
	if cfg.Pipeline == 0 {
		cfg.Pipeline = 2
	}
	if cfg.TailWait == 0 {
		cfg.TailWait = time.Minute
	}
	if cfg.StoreRetry == 0 {
		cfg.StoreRetry = 10 * time.Second
	}
	if cfg.Encoder == "" {
		cfg.Encoder = EncoderFFmpeg
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 5 * time.Minute
	}
	if cfg.StallGrace == 0 {
		cfg.StallGrace = 30 * time.Second
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	if cfg.Node == "" {
		cfg.Node = host
	}
	if cfg.ID == "" { // a registry key: no dots (a host name's domain)
		cfg.ID = fmt.Sprintf("%s-%d", strings.ReplaceAll(host, ".", "-"), os.Getpid())
	}
	if _, err := bus.WorkerKey(cfg.Pool, cfg.ID); err != nil {
		return nil, fmt.Errorf("worker: SPOOL_WORKER_ID / SPOOL_WORKER_POOL: %w", err)
	}

	w := &Worker{cfg: cfg, log: log, bus: b, blob: bl, node: cfg.Node, gpus: gpus, running: map[string]map[string]context.CancelFunc{},
		changed: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range opts {
		if err := o(w); err != nil {
			return nil, err
		}
	}
	cat, err := jobspec.LoadCatalog(cfg.Catalog.File)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	models, err := servedModels(cfg, cat)
	if err != nil {
		return nil, err
	}
	w.catalog = cat
	devices := []gpu.GPU{}
	if gpus != nil && slices.ContainsFunc(models, func(m jobspec.Model) bool { return m.Backend != "ref" }) {
		devices = gpus.GPUs()
	}
	n := len(devices)
	if n == 0 {
		n = cfg.Slots
	}
	w.tails = newTailCache(2 * n)
	w.codec, err = media.CodecByName(cfg.Codec)
	if err != nil {
		return nil, fmt.Errorf("worker: SPOOL_WORKER_CODEC: %w", err)
	}
	for i := range n {
		s := &slot{id: fmt.Sprintf("%s/%d", cfg.ID, i), wedged: make(chan struct{})}
		var device *gpu.GPU
		if i < len(devices) {
			s.gpu, device = devices[i], &devices[i]
		}
		if s.engines, err = OpenEngines(cfg, models, device); err != nil {
			w.Close()
			return nil, fmt.Errorf("worker: slot %d: %w", i, err)
		}
		w.slots = append(w.slots, s)
	}
	return w, nil
}

// Close frees the engines, except those given up as wedged: a call may
// still be stuck inside them, and only the process's exit ends it.
func (w *Worker) Close() {
	for _, s := range w.slots {
		select {
		case <-s.wedged:
		default:
			for _, e := range s.engines {
				_ = e.Close()
			}
		}
	}
}

// Run runs every slot until ctx ends; a slot then finishes its segment.
// When the watchdog gives up a wedged engine, Run stops fetching, lets the
// other slots drain as on a cancel of ctx, deregisters and returns an
// error wrapping ErrEngineWedged.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.bus.Await(ctx); err != nil { // the admin's streams, consumers and buckets
		return stoppedOr(ctx, err)
	}
	c, err := w.bus.DeclarePool(ctx, w.cfg.Pool)
	if err != nil {
		return stoppedOr(ctx, err)
	}
	kv, err := w.bus.Cancelled(ctx)
	if err != nil {
		return err
	}
	if err := w.cancelled.watch(ctx, kv, w.bus.Heal); err != nil {
		return err
	}
	sub, err := w.bus.Conn().Subscribe(bus.SubjectAllCancels, w.onCancel)
	if err != nil {
		return fmt.Errorf("worker: subscribe to cancellations: %w", err)
	}
	defer sub.Unsubscribe()
	voidSub, err := w.bus.Conn().Subscribe(bus.SubjectAllVoids, w.onVoid)
	if err != nil {
		return fmt.Errorf("worker: subscribe to voids: %w", err)
	}
	defer voidSub.Unsubscribe()
	regCtx, stopReg := context.WithCancel(context.WithoutCancel(ctx))
	regDone := make(chan struct{})
	go func() { defer close(regDone); _ = w.register(regCtx) }()
	defer func() { stopReg(); <-regDone }() // deregister once every slot is done
	ctx, w.stopRun = context.WithCancelCause(ctx)
	defer w.stopRun(nil)
	w.runCtx = ctx
	encCtx, stopEnc := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEnc()
	w.encCtx = encCtx
	m, err := newMetrics(w)
	if err != nil {
		return err
	}
	defer m.close()
	w.metrics = m
	done := make([]chan struct{}, len(w.slots))
	for i, s := range w.slots {
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			w.slotLoop(ctx, s, c)
		}()
	}
	for i, s := range w.slots {
		select {
		case <-done[i]:
		case <-s.wedged: // its loop may never return
		}
	}
	return w.wedged()
}

func (w *Worker) onCancel(m *nats.Msg) {
	job := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	w.cancelled.add(job, time.Now())
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cancel := range w.running[job] {
		cancel()
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

// stoppedOr is nil when ctx has ended (a SIGTERM before the worker took
// any task: there is nothing to drain, and the exit is a clean one), else
// err.
func stoppedOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
