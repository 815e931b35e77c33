package worker

import "sync"

// tailCache keeps the tail states this process uploaded most recently, so
// that a chain's next segment landing on another slot of the same process
// starts without downloading its conditioning: in a chain the next task is
// released the moment the tail is out, often to a slot next door. The
// object store stays the truth; a miss downloads.
type tailCache struct {
	mu    sync.Mutex
	max   int // entries kept
	keys  []string
	tails map[string][]byte
}

func newTailCache(max int) *tailCache { return &tailCache{max: max, tails: map[string][]byte{}} }

// put keeps a copy of state under key, dropping the oldest entry if full.
func (c *tailCache) put(key string, state []byte) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.tails[key]; ok {
		return
	}
	if len(c.keys) == c.max {
		delete(c.tails, c.keys[0])
		c.keys = c.keys[1:]
	}
	c.keys = append(c.keys, key)
	c.tails[key] = append([]byte(nil), state...)
}

// get returns the state under key; the slice must not be modified.
func (c *tailCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.tails[key]
	return b, ok
}
