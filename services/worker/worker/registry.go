package worker

import (
	"context"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spoolvideo/spool/libs/bus"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// info is the worker's registration.
func (w *Worker) info(started time.Time) *spoolv1.WorkerInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := &spoolv1.WorkerInfo{Id: w.cfg.ID, Node: w.node, Pool: w.cfg.Pool, Backend: strings.Join(w.backends(), ","),
		Slots: uint32(len(w.slots)), StartedAt: timestamppb.New(started), HeartbeatAt: timestamppb.Now()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i.Version = bi.Main.Version
	}
	models := map[string]bool{}
	for _, s := range w.slots {
		for _, m := range s.models() {
			models[m] = true
		}
		if s.gpu.UUID != "" {
			i.Gpus = append(i.Gpus, &spoolv1.GPU{Index: uint32(s.gpu.Index), Uuid: s.gpu.UUID, Name: s.gpu.Name, MemoryTotalBytes: s.gpu.MemoryTotal})
		}
	}
	for m := range models {
		i.Models = append(i.Models, m)
	}
	for _, held := range w.running {
		for key := range held {
			i.CurrentTasks = append(i.CurrentTasks, key)
		}
	}
	sort.Strings(i.Models)
	sort.Strings(i.CurrentTasks)
	return i
}

// registerGap is the least time between two registry writes prompted by
// the held tasks changing: short segments must not turn the registry into
// a write per segment.
const registerGap = 250 * time.Millisecond

// tasksChanged says the held tasks changed, so that the registry shows
// them within registerGap rather than at the next refresh.
func (w *Worker) tasksChanged() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// register keeps the worker's entry in spool_workers fresh until ctx ends,
// then deletes it: every cfg.Register, and within registerGap of a change
// in the tasks it holds (so clients see which worker runs which segment).
// Entries expire by the bucket's TTL if the worker dies. A bucket found
// missing (NATS lost its store) is declared again, and the entry put anew.
func (w *Worker) register(ctx context.Context) error {
	kv, err := w.bus.Workers(ctx)
	if err != nil {
		return err
	}
	key, err := bus.WorkerKey(w.cfg.Pool, w.cfg.ID)
	if err != nil {
		return err
	}
	started := time.Now()
	put := func() {
		data, err := proto.Marshal(w.info(started))
		if err == nil {
			// Bounded: a put that waits out a NATS outage must not hold up
			// the next, which registers again once NATS is back.
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(w.cfg.Register, time.Second))
			defer cancel()
			_, err = kv.Put(pctx, key, data)
			if err != nil && w.bus.Heal(pctx, err) { // the bucket was missing (NATS lost its store)
				_, err = kv.Put(pctx, key, data)
			}
		}
		if err != nil {
			w.log.Warn("register", "err", err)
		}
	}
	put()
	last := time.Now()
	t := time.NewTicker(w.cfg.Register)
	defer t.Stop()
	var due <-chan time.Time // a write prompted by a change, once the gap has passed
	for {
		select {
		case <-w.changed:
			if due == nil {
				due = time.After(max(registerGap-time.Since(last), 0))
			}
		case <-due:
			due = nil
			put()
			last = time.Now()
		case <-ctx.Done():
			if err := kv.Delete(context.WithoutCancel(ctx), key); err != nil {
				w.log.Warn("deregister", "err", err)
			}
			return nil
		case <-t.C:
			put()
			last = time.Now()
		}
	}
}
