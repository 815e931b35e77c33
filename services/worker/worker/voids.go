package worker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
)

// voidMemory is how long a worker remembers a void tail: far longer than a
// task of the segment conditioned on it can wait in its queue.
const voidMemory = 30 * time.Minute

// voidedTails are the tails the dispatcher declared void
// (spool.control.void.<job>): handed off, never to be in the store. A
// segment waiting for one as its conditioning stops at once, and a task
// still conditioned on one, fetched later, fails at once; both are handed
// back as CONDITIONING, uncounted.
type voidedTails struct {
	mu   sync.Mutex
	keys map[string]*voidedTail
}

type voidedTail struct {
	void    chan struct{} // closed once the tail is void
	at      time.Time     // when this worker heard of it; zero until then
	waiters int           // segments waiting for the tail now
}

// watch returns a channel that is closed once key is void (closed already
// when it is), and stop, to call when the wait is over.
func (v *voidedTails) watch(key string) (void <-chan struct{}, stop func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t := v.entry(key)
	t.waiters++
	return t.void, func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if t.waiters--; t.waiters == 0 && t.at.IsZero() {
			delete(v.keys, key)
		}
	}
}

// add records that key is void, waking its waiters, and forgets the voids
// older than voidMemory.
func (v *voidedTails) add(key string, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, t := range v.keys {
		if !t.at.IsZero() && now.Sub(t.at) > voidMemory && t.waiters == 0 {
			delete(v.keys, k)
		}
	}
	if t := v.entry(key); t.at.IsZero() {
		t.at = now
		close(t.void)
	}
}

func (v *voidedTails) entry(key string) *voidedTail {
	if v.keys == nil {
		v.keys = map[string]*voidedTail{}
	}
	t, ok := v.keys[key]
	if !ok {
		t = &voidedTail{void: make(chan struct{})}
		v.keys[key] = t
	}
	return t
}

// onVoid handles spool.control.void.<job>: the tail named in the body is
// void.
func (w *Worker) onVoid(m *nats.Msg) {
	job, key, err := bus.VoidOf(m)
	if err == nil {
		_, err = blob.ParseTailKey(job, key)
	}
	if err != nil {
		w.log.Warn("ignoring a void", "subject", m.Subject, "err", err)
		return
	}
	w.log.Info("tail voided", "job", job, "tail", key)
	w.voids.add(key, time.Now())
}
