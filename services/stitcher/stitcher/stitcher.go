package stitcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Stitcher appends committed segments to their jobs' videos.
type Stitcher struct {
	cfg     Config
	log     *slog.Logger
	bus     *bus.Bus
	store   *store.Store
	blob    *blob.Store
	codec   media.Codec
	metrics *metrics

	mu    sync.Mutex
	locks map[string]*jobLock // one appender per job at a time
	cache []*job              // jobs whose part buffer is in memory, most recent last
}

type jobLock struct {
	sync.Mutex
	users int
}

// New checks cfg and returns a Stitcher.
func New(cfg Config, b *bus.Bus, st *store.Store, bl *blob.Store, log *slog.Logger) (*Stitcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, err := media.CodecByName(cfg.Codec)
	if err != nil {
		return nil, fmt.Errorf("stitcher: SPOOL_STITCHER_CODEC: %w", err)
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics()
	if err != nil {
		return nil, err
	}
	return &Stitcher{cfg: cfg, log: log, bus: b, store: st, blob: bl, codec: codec, metrics: m, locks: map[string]*jobLock{}}, nil
}

// Run consumes results until ctx ends; every DONE makes its job append
// what has become contiguous. A sweep catches up jobs whose DONE was lost
// (a message lost, NATS's whole store lost): it appends what Postgres says
// is committed. A consumer found missing is declared again.
func (s *Stitcher) Run(ctx context.Context) error {
	if err := s.bus.Await(ctx); err != nil {
		return err
	}
	c, err := s.bus.Consumer(ctx, bus.StreamResults, bus.ConsumerStitcher)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); s.sweepLoop(ctx) }()
	// A stopped live job is finalized with what it has: its cancel is
	// the signal (the dispatcher records it before it publishes).
	sub, err := s.bus.Conn().Subscribe(bus.SubjectAllCancels, func(m *nats.Msg) {
		id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		go func() {
			time.Sleep(100 * time.Millisecond) // let the dispatcher's record land, if this came from a client
			if _, err := s.Append(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
				s.log.Warn("append after cancel", "job", id, "err", err)
			}
		}()
	})
	if err != nil {
		return fmt.Errorf("stitcher: subscribe to cancellations: %w", err)
	}
	defer sub.Unsubscribe()
	sem := make(chan struct{}, s.cfg.Parallel)
	for ctx.Err() == nil {
		batch, err := c.Fetch(64, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			s.fetchFailed(ctx, err)
			continue
		}
		for m := range batch.Messages() {
			r, err := bus.DecodeResult(m.Data())
			if err != nil {
				s.log.Error("dropping an undecodable result", "err", err)
				_ = m.Term()
				continue
			}
			if r.GetPhase() != spoolv1.Phase_PHASE_DONE {
				_ = m.Ack()
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.onDone(bus.ContextFromMsg(ctx, m), m, r)
			}()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			s.fetchFailed(ctx, err)
		}
	}
	return nil
}

// fetchFailed handles a fetch's error: the consumer or its stream found
// missing (NATS lost its store) is declared again and the fetch retried
// shortly; anything else is logged and waited out a little longer. The
// DONEs lost with the store are not waited for: the sweep appends what
// Postgres says is committed.
func (s *Stitcher) fetchFailed(ctx context.Context, err error) {
	wait := 50 * time.Millisecond
	if !s.bus.Heal(ctx, err) {
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("fetch results", "err", err)
		wait = 200 * time.Millisecond
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
}

// onDone appends what the DONE made contiguous and settles the message. A
// DONE that Postgres has not committed yet (the dispatcher commits in
// batches) comes back shortly; one for an attempt that lost to another is
// acknowledged and changes nothing.
func (s *Stitcher) onDone(ctx context.Context, m jetstream.Msg, r *spoolv1.SegmentResult) {
	id, idx := r.GetJobId(), int(r.GetIndex())
	appended, err := s.Append(ctx, id)
	if ctx.Err() != nil {
		return // shutting down: the message comes back to whoever runs next
	}
	switch {
	case errors.Is(err, store.ErrLeased):
		_ = m.NakWithDelay(s.cfg.Lease / 4)
		return
	case errors.Is(err, store.ErrNotFound):
		_ = m.Term()
		return
	case err != nil:
		s.log.Error("append", "job", id, "segment", idx, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	if idx >= appended {
		seg, err := s.store.GetSegment(ctx, id, idx)
		if err == nil && seg.State != store.SegDone && seg.State != store.SegFailed && seg.State != store.SegCancelled {
			_ = m.NakWithDelay(commitWait(m)) // not committed yet: the dispatcher commits in batches
			return
		}
	}
	_ = m.Ack()
}

// commitWait is how long a DONE that Postgres has not committed yet waits
// before it is looked at again: 5 ms, doubling with each delivery up to a
// second. The dispatcher commits within milliseconds; the last segment's
// wait is on the job's critical path.
func commitWait(m jetstream.Msg) time.Duration {
	n := uint64(1)
	if meta, err := m.Metadata(); err == nil {
		n = max(meta.NumDelivered, 1)
	}
	return min(5*time.Millisecond<<min(n-1, 8), time.Second)
}

// Append appends every committed segment of job that is next in order and
// finalizes the job after its last; it returns how many segments the video
// holds. A segment whose frames do not match the plan is sent back to the
// dispatcher for a redo, and the job waits for it. A job that ended without
// a final video (cancelled or failed) has its playlist closed instead.
//
// Its spans join the job's trace whatever called it (a DONE, the sweep, a
// stop): ctx's span when it is in the job's trace, else the job's stored
// trace context, is their parent.
func (s *Stitcher) Append(ctx context.Context, id string) (int, error) {
	unlock := s.lock(id)
	defer unlock()
	jb, err := s.store.GetJob(ctx, id)
	if err != nil {
		return 0, err
	}
	ctx = jobContext(ctx, jb)
	if jb.State == store.JobSucceeded {
		s.drop(id)
		return jb.SegmentsTotal, nil // finalized: a late or duplicate DONE changes nothing
	}
	stopped := jb.Live && jb.State == store.JobCancelled
	if jb.State.Terminal() && !stopped {
		s.drop(id)
		return s.close(ctx, jb) // failed, rejected or cancelled: nothing to append
	}
	if stopped {
		if _, err := s.store.GetStitch(ctx, id); errors.Is(err, store.ErrNotFound) {
			seg, err := s.store.GetSegment(ctx, id, 0)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return 0, err
			}
			if err != nil || seg.State != store.SegDone {
				return 0, nil // stopped before its first segment was made: no video
			}
		}
	}
	j, err := s.state(ctx, jb)
	if err != nil {
		return 0, err
	}
	if j.job.State.Terminal() && j.job.State != store.JobSucceeded && !(j.job.Live && j.job.State == store.JobCancelled) {
		s.drop(id)
		return j.appended, nil // failed or cancelled: nothing more to append
	}
	err = j.advance(ctx)
	if errors.Is(err, errFrameMismatch) {
		s.log.Error("segment sent back", "job", id, "segment", j.appended, "err", err)
		if rerr := s.redo(ctx, id, j.appended, err); rerr != nil {
			return j.appended, rerr
		}
		return j.appended, nil
	}
	if err != nil {
		s.drop(id) // rebuild from Postgres and MinIO next time
		return j.appended, err
	}
	if stopped && !j.st.Finalized { // stopped before a piece could be appended: no video
		s.drop(id)
		return s.close(ctx, jb)
	}
	if j.st.Finalized {
		s.drop(id)
	}
	return j.appended, nil
}

// redo reports the committed attempt of segment idx as corrupt: the
// dispatcher undoes its commit and runs the segment again.
func (s *Stitcher) redo(ctx context.Context, id string, idx int, why error) error {
	seg, err := s.store.GetSegment(ctx, id, idx)
	if err != nil {
		return err
	}
	if seg.CommittedAttempt == 0 {
		return nil
	}
	_, err = s.bus.PublishResult(ctx, &spoolv1.SegmentResult{JobId: id, Index: uint32(idx), Attempt: uint32(seg.CommittedAttempt),
		Phase: spoolv1.Phase_PHASE_FAILED, Pool: seg.Pool, ErrorClass: spoolv1.ErrorClass_ERROR_CLASS_CORRUPT,
		ErrorMessage: why.Error(), WorkerId: "stitcher/" + s.cfg.ID, SentAt: timestamppb.Now()})
	return err
}

// state returns the job's open stitch, from memory or rebuilt, keeping at
// most OpenJobs in memory; jb is the job as just read.
func (s *Stitcher) state(ctx context.Context, jb store.Job) (*job, error) {
	s.mu.Lock()
	for i, j := range s.cache {
		if j.job.ID == jb.ID {
			s.cache = append(append(s.cache[:i:i], s.cache[i+1:]...), j)
			s.mu.Unlock()
			j.job = jb
			if _, err := s.store.OpenStitch(ctx, jb.ID, s.cfg.ID, s.cfg.Lease, func() (string, error) {
				return "", fmt.Errorf("stitcher: %s: the stitch row is gone", jb.ID)
			}); err != nil { // renews the lease
				s.drop(jb.ID)
				return nil, err
			}
			return j, nil
		}
	}
	s.mu.Unlock()
	j, err := s.open(ctx, jb)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache = append(s.cache, j)
	if len(s.cache) > s.cfg.OpenJobs {
		// Deleted, not resliced: the evicted job, whose buffer may hold
		// a part, must not stay reachable through the array.
		s.cache = slices.Delete(s.cache, 0, 1)
	}
	return j, nil
}

func (s *Stitcher) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, j := range s.cache {
		if j.job.ID == id {
			s.cache = append(s.cache[:i:i], s.cache[i+1:]...)
			return
		}
	}
}

func (s *Stitcher) lock(id string) func() {
	s.mu.Lock()
	l := s.locks[id]
	if l == nil {
		l = &jobLock{}
		s.locks[id] = l
	}
	l.users++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.locks, id)
		}
		s.mu.Unlock()
	}
}

// finishJob records the final artifact f (its job id set here) with the
// job's success, then publishes the succeeded event (the dispatcher's
// outbox loop sends it should this process die first). The event's
// figures are those of the video made.
func (s *Stitcher) finishJob(ctx context.Context, jb store.Job, f store.Final) error {
	subject, err := bus.EventsSubject(jb.ID)
	if err != nil {
		return err
	}
	ev := &spoolv1.JobEvent{JobId: jb.ID, State: spoolv1.JobState_JOB_STATE_SUCCEEDED, Progress: 1,
		SegmentsDone: uint32(f.Segments), SegmentsTotal: uint32(f.Segments), At: timestamppb.Now(),
		Message: fmt.Sprintf("%d frames stitched into %s", f.Frames, f.Key)}
	payload, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("stitcher: encode event: %w", err)
	}
	msgID := jb.ID + ".succeeded"
	started := time.Now()
	f.JobID, f.Outbox = jb.ID, []store.OutboxMsg{{MsgID: msgID, Subject: subject, Payload: payload}}
	finished, err := s.store.FinishJob(ctx, f)
	if err != nil || !finished {
		return err
	}
	if _, err := s.bus.PublishEvent(ctx, msgID, ev); err == nil {
		_ = s.store.MarkSent(ctx, msgID)
	}
	s.metrics.finished(ctx, time.Since(started), jb.CreatedAt)
	s.log.Info("job succeeded", "job", jb.ID, "frames", f.Frames, "bytes", f.Bytes, "key", f.Key)
	return nil
}

// sweepLoop appends for running jobs whose DONE this stitcher missed (a
// message lost, a stitcher down), and ends the stitches of jobs that ended
// meanwhile, every Sweep.
func (s *Stitcher) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var cur *store.Cursor
		for ctx.Err() == nil {
			jobs, next, err := s.store.ListJobs(ctx, store.ListJobsParams{State: store.JobRunning, Limit: 200, After: cur})
			if err != nil {
				s.log.Warn("sweep", "err", err)
				break
			}
			for _, jb := range jobs {
				if jb.SegmentsDone > 0 {
					if _, err := s.Append(ctx, jb.ID); err != nil && !errors.Is(err, store.ErrLeased) {
						s.log.Warn("sweep append", "job", jb.ID, "err", err)
					}
				}
			}
			if next == nil {
				break
			}
			cur = next
		}
		s.sweepEnded(ctx)
	}
}

// sweepEnded ends the stitches of jobs that ended while their stitch was
// open, whose cancel this stitcher missed: a stopped live job is finalized,
// a cancelled or failed one has its playlist closed.
func (s *Stitcher) sweepEnded(ctx context.Context) {
	ids, err := s.store.EndedStitches(ctx, 200)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("sweep ended jobs", "err", err)
		}
		return
	}
	for _, id := range ids {
		if _, err := s.Append(ctx, id); err != nil && !errors.Is(err, store.ErrLeased) && ctx.Err() == nil {
			s.log.Warn("sweep ended job", "job", id, "err", err)
		}
	}
}
