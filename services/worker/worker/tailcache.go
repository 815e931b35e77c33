package worker

import (
	"context"
	"sync"
	"time"
)

// tailCache keeps the tail states this process produced most recently, so
// that a chain's next segment landing on one of its slots starts from
// memory: the next task is released the moment the tail is handed off,
// while its upload still runs. The object store stays the truth for every
// other process, and a miss downloads.
type tailCache struct {
	mu    sync.Mutex
	max   int // entries kept
	keys  []string
	tails map[string]*tailEntry
}

// tailEntry is one tail state and its upload to the object store.
type tailEntry struct {
	state    []byte        // the process's own copy; never modified
	uploaded chan struct{} // closed when the upload has ended (after its TAIL_VOID went out, when it failed)
	err      error         // the upload's error, once uploaded is closed
	took     time.Duration // how long the upload took, once uploaded is closed
	progress clock         // moves as the upload's bytes go out
}

func newTailCache(max int) *tailCache { return &tailCache{max: max, tails: map[string]*tailEntry{}} }

// add keeps a copy of state under key, dropping the oldest entry if full,
// and returns the entry, whose upload the caller starts and ends with done.
// A cache of size zero keeps nothing but still returns an entry.
func (c *tailCache) add(key string, state []byte) *tailEntry {
	e := &tailEntry{state: append([]byte(nil), state...), uploaded: make(chan struct{})}
	if c.max == 0 {
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.tails[key]; !ok {
		if len(c.keys) == c.max {
			delete(c.tails, c.keys[0])
			c.keys = c.keys[1:]
		}
		c.keys = append(c.keys, key)
	}
	c.tails[key] = e
	return e
}

// get returns the entry under key.
func (c *tailCache) get(key string) (*tailEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tails[key]
	return e, ok
}

// done records the end of the entry's upload.
func (e *tailEntry) done(err error, took time.Duration) {
	e.err, e.took = err, took
	close(e.uploaded)
}

// failed returns the upload's error once it has ended in failure: the
// tail is void. It is nil while the upload runs, and after it succeeded.
func (e *tailEntry) failed() error {
	select {
	case <-e.uploaded:
		return e.err
	default:
		return nil
	}
}

// wait blocks until the entry's upload has ended and returns its error.
// Meanwhile the upload's progress is that of ctx's task.
func (e *tailEntry) wait(ctx context.Context) error {
	defer following(ctx, &e.progress)()
	select {
	case <-e.uploaded:
		return e.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
