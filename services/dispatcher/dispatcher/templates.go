package dispatcher

import (
	"context"
	"strconv"
	"sync"

	"github.com/spoolvideo/spool/libs/store"
)

// maxTemplates bounds the template cache; past it the cache starts over.
const maxTemplates = 100_000

// templates caches the task templates of chain segments that a TAIL_READY
// will release next, read ahead of time, so that the hand-off itself is one
// round trip to Postgres. A miss only means the slower path.
type templates struct {
	mu sync.Mutex
	m  map[string][]byte
}

func tplKey(job string, idx int) string { return job + "/" + strconv.Itoa(idx) }

func (t *templates) take(job string, idx int) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tplKey(job, idx)
	tpl, ok := t.m[k]
	delete(t.m, k)
	return tpl, ok
}

func (t *templates) put(job string, idx int, tpl []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil || len(t.m) >= maxTemplates {
		t.m = map[string][]byte{}
	}
	t.m[tplKey(job, idx)] = tpl
}

// prefetch caches the template of segment idx of job if it waits for a
// hand-off.
func (d *Dispatcher) prefetch(ctx context.Context, job string, idx int) {
	s, err := d.store.GetSegment(ctx, job, idx)
	if err == nil && s.State == store.SegPending && len(s.Task) > 0 {
		d.tpl.put(job, idx, s.Task)
	}
}
