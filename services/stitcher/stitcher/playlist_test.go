package stitcher_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/hls"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// poller reads a job's playlist from MinIO over and over, as a player
// polls it, and checks every new version against the rules a player
// relies on (hls.Watcher).
type poller struct {
	mu     sync.Mutex
	w      hls.Watcher
	broken []error
	stop   chan struct{}
	done   chan struct{}
}

func (e *env) pollPlaylist(t *testing.T, id string) *poller {
	t.Helper()
	key, err := blob.HLSPlaylist(id)
	if err != nil {
		t.Fatal(err)
	}
	p := &poller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		last := ""
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			data, err := readAll(e.blob, key)
			if err != nil || string(data) == last {
				continue // not written yet, or being replaced: the next poll reads it
			}
			last = string(data)
			pl, err := hls.Parse(last)
			p.mu.Lock()
			if err == nil {
				err = p.w.Next(pl)
			}
			if err != nil {
				p.broken = append(p.broken, fmt.Errorf("version %d:\n%s\n%w", p.w.Versions(), last, err))
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.halt)
	return p
}

func (p *poller) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// waitFor waits until the last version read satisfies cond.
func (p *poller) waitFor(t *testing.T, what string, cond func(hls.Playlist) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		last, ok := p.w.Last()
		p.mu.Unlock()
		if ok && cond(last) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the playlist never %s; last version:\n%s", what, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lists is true of a version that lists the piece of segment idx.
func lists(idx int) func(hls.Playlist) bool {
	return func(p hls.Playlist) bool { return p.MediaSequence+len(p.Segments) > idx }
}

func ended(p hls.Playlist) bool { return p.End }

// finish stops polling and checks that no version broke a rule and that
// the versions seen add up to frames at fps, closed by ENDLIST.
func (p *poller) finish(t *testing.T, frames int64, fps int) {
	t.Helper()
	p.halt()
	if err := errors.Join(p.broken...); err != nil {
		t.Fatal(err)
	}
	if err := p.w.Complete(frames, fps); err != nil {
		last, _ := p.w.Last()
		t.Fatalf("%v\nlast version:\n%s", err, last)
	}
	if p.w.Versions() < 2 {
		t.Fatalf("%d versions read: the playlist was not seen growing", p.w.Versions())
	}
}

// nextChain answers a chain job's next task as a worker would: TAIL_READY
// (unless last), then the fragment and DONE. It returns the task.
func (e *env) nextChain(t *testing.T, last bool) *spoolv1.SegmentTask {
	t.Helper()
	task := e.nextTask(t)
	if !last {
		key, _ := blob.SegmentTail(task.JobId, task.Index, task.Attempt)
		if _, err := e.bus.PublishResult(context.Background(), &spoolv1.SegmentResult{JobId: task.JobId, Index: task.Index,
			Attempt: task.Attempt, Phase: spoolv1.Phase_PHASE_TAIL_READY, Pool: task.Pool, TailKey: string(key)}); err != nil {
			t.Fatal(err)
		}
	}
	e.done(t, task, task.Attempt, 0)
	return task
}

// TestPlaylistRulesWhilePolled: a player polls each kind of job's playlist
// while the job runs; every version keeps the rules (target duration fixed
// for the playlist's life, media sequence and segments only advancing, a
// segment keeping its URI and duration, EXT-X-MAP, a live window of at
// least three target durations), the playlist ends with EXT-X-ENDLIST
// however the job ends (succeeded, cancelled, failed, a live job stopped),
// and its segments add up to the frames the job made. The job's status
// figures are those of what was made.
//
// At 4 fps a 9-frame window lasts 2.25 s and its 6 new frames 1.5 s, so
// the longest piece (a chain's first, an independent job's last) rounds up
// to a target of 3 s while the others would give 2.
func TestPlaylistRulesWhilePolled(t *testing.T) {
	const fps = 4
	spec := func(id, pool, extra string) string {
		return fmt.Sprintf(`{"id":"%s","prompt":"x","model":"sim","windowFrames":9,"overlapFrames":3,"width":%d,"height":%d,`+
			`"steps":1,"fps":%d,"pool":"%s"%s}`, id, w, h, fps, pool, extra)
	}
	cases := []struct {
		name, id string
		extra    string // spec fields
		segments int    // answered before the end
		end      string // "", "cancel", "fail": how the job ends
		want     store.JobState
	}{
		{"chain succeeded", "pl-chain", `,"durationFrames":37`, 6, "", store.JobSucceeded},
		{"independent succeeded", "pl-indep", `,"durationFrames":21,"mode":"MODE_INDEPENDENT"`, 3, "", store.JobSucceeded},
		{"chain cancelled", "pl-cancel", `,"durationFrames":37`, 3, "cancel", store.JobCancelled},
		{"chain failed", "pl-fail", `,"durationFrames":37`, 2, "fail", store.JobFailed},
		{"live stopped", "pl-live", `,"live":true`, 10, "cancel", store.JobSucceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.stitcher(t, "s1") // a live window of 3 pieces, stretched to three target durations
			id := unique(c.id)
			p := e.pollPlaylist(t, id)
			var answered []*spoolv1.SegmentTask
			if strings.Contains(c.extra, "MODE_INDEPENDENT") {
				answered = e.tasks(t, spec(id, e.pool, c.extra), c.segments)
				for _, task := range answered {
					e.done(t, task, 1, 0)
					p.waitFor(t, fmt.Sprintf("listed piece %d", task.Index), lists(int(task.Index)))
				}
			} else {
				submit(t, e, spec(id, e.pool, c.extra))
				for k := range c.segments {
					answered = append(answered, e.nextChain(t, c.end == "" && k == c.segments-1))
					p.waitFor(t, fmt.Sprintf("listed piece %d", k), lists(k))
				}
			}
			ctx := context.Background()
			switch c.end {
			case "cancel":
				if err := e.bus.PublishCancel(ctx, id); err != nil {
					t.Fatal(err)
				}
			case "fail":
				next := e.nextTask(t)
				if _, err := e.bus.PublishResult(ctx, &spoolv1.SegmentResult{JobId: id, Index: next.Index, Attempt: next.Attempt,
					Phase: spoolv1.Phase_PHASE_FAILED, Pool: next.Pool, ErrorClass: spoolv1.ErrorClass_ERROR_CLASS_PERMANENT,
					ErrorMessage: "no such model"}); err != nil {
					t.Fatal(err)
				}
			}
			p.waitFor(t, "ended", ended)
			j, err := e.store.GetJob(ctx, id) // ENDLIST is written after the job's end is recorded
			if err != nil || j.State != c.want {
				t.Fatalf("job %s %s (%v), want %s", id, j.State, err, c.want)
			}
			pieces, err := e.store.ListPieces(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			var frames int64
			for _, pc := range pieces {
				frames += int64(pc.Frames)
			}
			p.finish(t, frames, fps)
			if len(pieces) != len(answered) || j.FramesMade() != frames || (j.FinalKey != "" && j.FinalFrames != frames) ||
				j.SegmentsDone != len(answered) || (j.State == store.JobSucceeded && j.SegmentsTotal != len(answered)) {
				t.Fatalf("%d pieces of %d frames for %d segments answered; the job says %d frames made (final %d), %d of %d segments",
					len(pieces), frames, len(answered), j.FramesMade(), j.FinalFrames, j.SegmentsDone, j.SegmentsTotal)
			}
		})
	}
}

// unique makes a job id unique to this run of the test, so that -count
// runs it again on the same stack.
func unique(id string) string {
	return fmt.Sprintf("%s-%s", id, strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36))
}

// submit publishes a JSON spec.
func submit(t *testing.T, e *env, spec string) {
	t.Helper()
	if _, err := e.bus.JetStream().Publish(context.Background(), bus.SubjectJobSubmit, []byte(spec)); err != nil {
		t.Fatal(err)
	}
}

// nextTask takes the pool's next task without answering it.
func (e *env) nextTask(t *testing.T) *spoolv1.SegmentTask {
	t.Helper()
	c, err := e.bus.DeclarePool(context.Background(), e.pool)
	if err != nil {
		t.Fatal(err)
	}
	m, err := fetch(t, c)
	if err != nil {
		t.Fatal(err)
	}
	task, err := bus.DecodeTask(m.Data())
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Ack()
	return task
}
