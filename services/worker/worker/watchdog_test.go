package worker

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestWatchVerdict: when a held task is stalled, and when to look again.
func TestWatchVerdict(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *clock {
		c := &clock{}
		c.at.Store(t0.Add(d).UnixNano())
		return c
	}
	cases := []struct {
		name     string
		last     time.Duration // own progress, from t0
		follow   *clock
		holds    int32
		deadline time.Duration // from t0; 0: none
		now      time.Duration // from t0
		want     string        // in the verdict; "" for none
		next     time.Duration
	}{
		{name: "progress just now", now: 0, next: 10 * time.Second},
		{name: "quiet a while", last: 0, now: 4 * time.Second, next: 6 * time.Second},
		{name: "quiet for the timeout", now: 10 * time.Second, want: "no progress for 10s"},
		{name: "quiet past it", now: 25 * time.Second, want: "no progress for 25s"},
		{name: "a followed upload moves", follow: at(20 * time.Second), now: 25 * time.Second, next: 5 * time.Second},
		{name: "a followed upload stopped", follow: at(time.Second), now: 12 * time.Second, want: "no progress for 11s"},
		{name: "held: waiting is no stall", holds: 1, now: time.Hour, deadline: 2 * time.Hour, next: 10 * time.Second},
		{name: "deadline first", now: 2 * time.Second, deadline: 5 * time.Second, next: 3 * time.Second},
		{name: "deadline passed, progress or not", last: 29 * time.Second, now: 30 * time.Second, deadline: 30 * time.Second,
			want: "deadline 2026-01-02T03:04:35Z passed"},
		{name: "deadline passed while held", holds: 1, now: 31 * time.Second, deadline: 30 * time.Second, want: "deadline"},
	}
	for _, c := range cases {
		wt := &watch{timeout: 10 * time.Second}
		wt.at.Store(t0.Add(c.last).UnixNano())
		if c.follow != nil {
			wt.follow.Store(c.follow)
		}
		wt.holds.Store(c.holds)
		if c.deadline != 0 {
			wt.deadline = t0.Add(c.deadline)
		}
		why, next := wt.verdict(t0.Add(c.now))
		switch {
		case c.want == "" && why != "":
			t.Errorf("%s: stalled (%s), want not", c.name, why)
		case c.want != "" && !strings.Contains(why, c.want):
			t.Errorf("%s: verdict %q, want %q", c.name, why, c.want)
		case c.want == "" && next != c.next:
			t.Errorf("%s: look again in %v, want %v", c.name, next, c.next)
		}
	}
}

// TestWatchDeadlineSkipsQueueTime: the task's deadline bounds its time in a
// worker's hands; the time it waited in the stream is added to it.
func TestWatchDeadlineSkipsQueueTime(t *testing.T) {
	dl := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		task   *spoolv1.SegmentTask
		queued time.Duration
		want   time.Time
	}{
		{"none", &spoolv1.SegmentTask{}, time.Minute, time.Time{}},
		{"as given", &spoolv1.SegmentTask{Deadline: timestamppb.New(dl)}, 0, dl},
		{"after a wait in the stream", &spoolv1.SegmentTask{Deadline: timestamppb.New(dl)}, 10 * time.Minute, dl.Add(10 * time.Minute)},
		{"clock skew", &spoolv1.SegmentTask{Deadline: timestamppb.New(dl)}, -time.Second, dl},
	}
	for _, c := range cases {
		if got := newWatch(time.Minute, c.task, c.queued).deadline; !got.Equal(c.want) {
			t.Errorf("%s: deadline %v, want %v", c.name, got, c.want)
		}
	}
}

// acks is a task message that counts its AckProgress.
type acks struct {
	jetstream.Msg
	progress atomic.Int64
}

func (a *acks) InProgress() error { a.progress.Add(1); return nil }

// TestHeartbeatsProveProgress: AckProgress goes out while the segment
// reports progress; once it has made none for the stall timeout the
// segment is stalled and cancelled, and the heartbeat goes on only through
// the bounded stall grace, after which the watchdog settles the task.
func TestHeartbeatsProveProgress(t *testing.T) {
	const beat, stall = 50 * time.Millisecond, 2 * time.Second
	w := &Worker{cfg: Config{Heartbeat: beat, Drain: time.Hour, StallTimeout: stall, StallGrace: time.Hour},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	msg := &acks{}
	task := &spoolv1.SegmentTask{JobId: "j", Pool: "p"}
	d := &delivery{w: w, slot: &slot{id: "s/0"}, msg: msg, task: task, key: "j/0/1",
		watch: newWatch(stall, task, 0), stop: make(chan struct{}), stopped: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go d.heartbeat(context.Background())
	defer func() { close(d.stop); <-d.stopped }()

	// Progress every 10 ms for longer than the stall timeout: heartbeats go
	// out and nothing stalls.
	for end := time.Now().Add(stall + stall/4); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		d.watch.touch()
	}
	if why := d.watch.stalled(); why != "" || msg.progress.Load() == 0 || d.ctx.Err() != nil {
		t.Fatalf("while progressing: stalled %q, %d heartbeats, ctx %v", why, msg.progress.Load(), d.ctx.Err())
	}
	// No progress: the watchdog stalls the segment and cancels it.
	<-d.ctx.Done()
	why := d.watch.stalled()
	if !strings.Contains(why, "no progress for") {
		t.Fatalf("cancelled, but the verdict is %q", why)
	}
	// The stalled task stays this worker's to settle while the stall grace
	// runs (an hour here): were it delivered again meanwhile, another worker
	// would settle it ABANDONED before this one's STALLED. The heartbeat goes
	// on, bounded by the grace.
	sent := msg.progress.Load()
	deadline := time.Now().Add(time.Minute)
	for msg.progress.Load() < sent+3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d heartbeats in a minute of the stall grace, want them to go on", msg.progress.Load()-sent)
		}
		time.Sleep(beat)
	}
}
