package dispatcher

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// pace is what pacing a job's segments needs of it. A live job is paced:
// its video may be generated at most LiveAheadS ahead of its live edge,
// which starts when its segment 0 is first released (store.AdmitReady
// records the time in Postgres) and advances with the wall clock. A
// bounded job's pace is the zero pace: its segments go out at once.
type pace struct {
	live  bool
	fps   int
	ahead time.Duration // how far past the live edge a segment may start
	start time.Time     // the live clock: frame f is at the live edge at start + f/fps
}

// releaseAt is when a segment whose first new frame is newStart may go
// out: when that frame lies no more than ahead past the live edge,
// start + newStart/fps − ahead. Zero for a bounded job.
func (p pace) releaseAt(newStart int64) time.Time {
	if !p.live || p.fps < 1 {
		return time.Time{}
	}
	at := time.Duration(newStart) * time.Second / time.Duration(p.fps)
	return p.start.Add(at - p.ahead)
}

// notBefore is when the task of template tpl may go out under p, as an
// outbox row's NotBefore: zero when that is now or past.
func (p pace) notBefore(tpl []byte, now time.Time) time.Time {
	if !p.live {
		return time.Time{}
	}
	var t spoolv1.SegmentTask
	if proto.Unmarshal(tpl, &t) != nil {
		return time.Time{}
	}
	at := p.releaseAt(t.FirstFrame + int64(t.Overlap))
	if !at.After(now) {
		return time.Time{}
	}
	return at
}

// maxPaces bounds the pace cache; past it the cache starts over.
const maxPaces = 100_000

// paces caches jobs' paces, which never change once known.
type paces struct {
	mu sync.Mutex
	m  map[string]pace
}

// pace returns job's pace, from the cache or Postgres; it starts a live
// job's clock if admission has not (a job admitted before the clock was
// recorded).
func (d *Dispatcher) pace(ctx context.Context, job string) (pace, error) {
	d.paces.mu.Lock()
	p, ok := d.paces.m[job]
	d.paces.mu.Unlock()
	if ok {
		return p, nil
	}
	j, err := d.store.GetJob(ctx, job)
	if err != nil {
		return pace{}, err
	}
	if j.Live {
		start := j.LiveStartAt
		if start == nil {
			at, err := d.store.StartLiveClock(ctx, job)
			if err != nil {
				return pace{}, err
			}
			start = &at
		}
		p = pace{live: true, fps: j.FPS, ahead: time.Duration(j.LiveAheadS * float64(time.Second)), start: *start}
	}
	d.paces.mu.Lock()
	defer d.paces.mu.Unlock()
	if d.paces.m == nil || len(d.paces.m) >= maxPaces {
		d.paces.m = map[string]pace{}
	}
	d.paces.m[job] = p
	return p, nil
}
