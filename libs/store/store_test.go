package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/store"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

var dbSeq atomic.Int64

// freshDB returns the DSN of a new, empty database on the test Postgres.
func freshDB(t *testing.T) string {
	t.Helper()
	st := devstacktest.Require(t, devstacktest.Postgres)
	name := fmt.Sprintf("t_%d_%d", time.Now().UnixNano()%1e9, dbSeq.Add(1))
	dsn, err := store.CreateTestDatabase(context.Background(), st.PGDSN, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func open(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), config.Postgres{DSN: config.Secret(dsn), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var (
	shared     *store.Store
	sharedOnce sync.Once
)

// db is one migrated database shared by the tests that use unique ids.
func db(t *testing.T) *store.Store {
	t.Helper()
	sharedOnce.Do(func() {
		dsn := freshDB(t)
		s, err := store.Open(context.Background(), config.Postgres{DSN: config.Secret(dsn), MaxConns: 16})
		if err != nil {
			t.Fatal(err)
		}
		shared = s
	})
	if shared == nil {
		t.Fatal("no shared database")
	}
	return shared
}

var jobSeq atomic.Int64

func newJob(t *testing.T, segments int) store.NewJob {
	id := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), jobSeq.Add(1))
	if len(id) > 64 {
		id = id[len(id)-64:]
		id = "j" + id[1:]
	}
	nj := store.NewJob{Job: store.Job{ID: id, Tenant: "acme", Priority: 5, Pool: "default", Model: "ref", Mode: "chain",
		State: store.JobQueued, Spec: []byte(`{"prompt":"x"}`), TotalFrames: int64(segments * 84), FPS: 24, Width: 1280, Height: 720,
		SegmentsTotal: segments}}
	for i := range segments {
		nj.Segments = append(nj.Segments, store.Segment{Index: i, FirstFrame: int64(i * 84), Frames: 121, Overlap: 37,
			Prompt: "x", Seed: ^uint64(i), Pool: "default", State: store.SegPending})
		nj.Outbox = append(nj.Outbox, store.OutboxMsg{MsgID: fmt.Sprintf("%s.%d.1.task", id, i), Subject: "spool.segments.default", Payload: []byte{byte(i)}})
	}
	return nj
}

func TestMigrationsApplyTwiceAndConcurrently(t *testing.T) {
	dsn := freshDB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(context.Background(), config.Postgres{DSN: config.Secret(dsn)})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	a, b := open(t, dsn), open(t, dsn)
	va, err := a.SchemaVersion(context.Background())
	vb, _ := b.SchemaVersion(context.Background())
	if err != nil || va != vb || va < 1 {
		t.Fatalf("versions %d %d %v", va, vb, err)
	}
}

func TestOpenHidesTheDSN(t *testing.T) {
	_, err := store.Open(context.Background(), config.Postgres{DSN: "postgres://u:hunter2@%zz"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
}

func TestCreateJobIsAtomicAndIdempotent(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 3)
	created, err := s.CreateJob(ctx, nj)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	again, err := s.CreateJob(ctx, nj)
	if err != nil || again {
		t.Fatalf("second create: %v %v", again, err)
	}
	segs, _ := s.ListSegments(ctx, nj.Job.ID)
	if len(segs) != 3 || segs[2].Seed != ^uint64(2) || segs[1].State != store.SegPending {
		t.Fatalf("segments %+v", segs)
	}
	if n, _ := s.UnsentOutbox(ctx); n < 3 {
		t.Fatalf("%d unsent outbox rows", n)
	}
	// A failure in the middle (a duplicate segment index) leaves nothing.
	bad := newJob(t, 2)
	bad.Segments[1].Index = 0
	if _, err := s.CreateJob(ctx, bad); err == nil {
		t.Fatal("duplicate segment index accepted")
	}
	if _, err := s.GetJob(ctx, bad.Job.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half-created job: %v", err)
	}
}

func TestRejectJob(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	j := newJob(t, 0).Job
	j.TotalFrames, j.SegmentsTotal = 1, 0
	j.ErrorCode, j.ErrorField, j.ErrorMessage = "invalid_argument", "fps", "fps: 500 is not allowed; allowed: 1..60"
	if created, err := s.RejectJob(ctx, j); err != nil || !created {
		t.Fatalf("reject: %v %v", created, err)
	}
	if created, err := s.RejectJob(ctx, j); err != nil || created {
		t.Fatalf("second reject: %v %v", created, err)
	}
	got, err := s.GetJob(ctx, j.ID)
	if err != nil || got.State != store.JobRejected || got.ErrorField != "fps" || got.FinishedAt == nil {
		t.Fatalf("rejected job %+v %v", got, err)
	}
	j2 := newJob(t, 0).Job
	if _, err := s.RejectJob(ctx, j2); err == nil {
		t.Fatal("rejection without an error code accepted")
	}
}

func TestChecksRejectBogusValues(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	cases := map[string]func(*store.NewJob){
		"state":    func(nj *store.NewJob) { nj.Job.State = "exploded" },
		"job id":   func(nj *store.NewJob) { nj.Job.ID = "../x" },
		"priority": func(nj *store.NewJob) { nj.Job.Priority = 11 },
		"overlap":  func(nj *store.NewJob) { nj.Segments[0].Overlap = 200 },
		"seg state": func(nj *store.NewJob) {
			nj.Segments[0].State = "napping"
		},
	}
	for name, mut := range cases {
		nj := newJob(t, 1)
		mut(&nj)
		if _, err := s.CreateJob(ctx, nj); err == nil {
			t.Errorf("%s: bogus value accepted", name)
		}
	}
}

// TestCommitFirstDoneWins: eight attempts race to commit; exactly one does,
// and a DONE delivered again changes nothing.
func TestCommitFirstDoneWins(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 2)
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	id := nj.Job.ID
	var wg sync.WaitGroup
	var wins atomic.Int32
	for a := 1; a <= 8; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := store.SegmentDone{JobID: id, Index: 0, Attempt: a, VideoKey: fmt.Sprintf("jobs/%s/seg/0/a%d/video.m4s", id, a),
				SHA256: strings.Repeat("a", 64), Bytes: 100, Frames: 84, Worker: store.Worker{WorkerID: fmt.Sprintf("w%d", a)},
				Timings: store.Timings{DenoiseMS: 10 * a}}
			ok, err := s.CommitDoneBatch(ctx, []store.SegmentDone{done}, nil)
			if err != nil {
				t.Error(err)
			}
			if len(ok) == 1 && ok[0] {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d commits, want 1", wins.Load())
	}
	segs, _ := s.ListSegments(ctx, id)
	winner := segs[0].CommittedAttempt
	if segs[0].State != store.SegDone || winner < 1 {
		t.Fatalf("segment %+v", segs[0])
	}
	attempts, _ := s.ListAttempts(ctx, id, 0)
	outcomes := map[store.Outcome]int{}
	for _, a := range attempts {
		outcomes[a.Outcome]++
	}
	if outcomes[store.OutcomeDone] != 1 || outcomes[store.OutcomeDuplicate] != 7 {
		t.Fatalf("outcomes %v", outcomes)
	}
	// The winner's DONE again: nothing changes.
	before, _ := s.GetJob(ctx, id)
	again, err := s.CommitDoneBatch(ctx, []store.SegmentDone{{JobID: id, Index: 0, Attempt: winner,
		VideoKey: fmt.Sprintf("jobs/%s/seg/0/a%d/video.m4s", id, winner), SHA256: strings.Repeat("a", 64)}}, nil)
	after, _ := s.GetJob(ctx, id)
	if err != nil || again[0] || after.SegmentsDone != before.SegmentsDone || after.SegmentsDone != 1 || after.Progress != 0.5 {
		t.Fatalf("redelivered DONE: %v %v, done %d→%d progress %v", again, err, before.SegmentsDone, after.SegmentsDone, after.Progress)
	}
	if got, err := s.CommitDoneBatch(ctx, []store.SegmentDone{{JobID: id, Index: 9, Attempt: 1}}, nil); err != nil || got[0] {
		t.Fatalf("unknown segment: %v %v", got, err)
	}
}

// TestAbandonedAttemptThatCommitsIsDone: an attempt reported abandoned (a
// frozen worker's task delivered again) whose DONE then arrives first is
// the committed one, recorded done with its abandonment's error cleared;
// the retry's later DONE is a duplicate.
func TestAbandonedAttemptThatCommitsIsDone(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 1)
	nj.Segments[0].State = store.SegQueued
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	id := nj.Job.ID
	if ok, err := s.RetrySegment(ctx, store.Retry{JobID: id, Index: 0, Attempt: 1, Outcome: store.OutcomeAbandoned,
		ErrorClass: "ERROR_CLASS_ABANDONED", ErrorMsg: "delivered again"}); err != nil || !ok {
		t.Fatalf("retry: %v %v", ok, err)
	}
	done := func(a int) bool {
		ok, err := s.CommitDoneBatch(ctx, []store.SegmentDone{{JobID: id, Index: 0, Attempt: a, SHA256: strings.Repeat("a", 64),
			VideoKey: fmt.Sprintf("jobs/%s/seg/0/a%d/video.m4s", id, a), Frames: 84, Worker: store.Worker{WorkerID: fmt.Sprintf("w%d", a)}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ok[0]
	}
	if !done(1) || done(2) {
		t.Fatal("want the first DONE, attempt 1's, committed and attempt 2's not")
	}
	segs, _ := s.ListSegments(ctx, id)
	as, _ := s.ListAttempts(ctx, id, 0)
	if segs[0].CommittedAttempt != 1 || len(as) != 2 || as[0].Outcome != store.OutcomeDone || as[0].ErrorClass != "" ||
		as[0].ErrorMsg != "" || as[0].Worker.WorkerID != "w1" || as[1].Outcome != store.OutcomeDuplicate {
		t.Fatalf("committed attempt %d; attempts %+v", segs[0].CommittedAttempt, as)
	}
}

// chainOfTwo creates a job of two segments, the first queued and the
// second waiting for its tail, and returns its id.
func chainOfTwo(t *testing.T) (*store.Store, string) {
	t.Helper()
	s := db(t)
	nj := newJob(t, 2)
	nj.Segments[0].State = store.SegQueued
	nj.Segments[1].Task = []byte{9}
	if _, err := s.CreateJob(context.Background(), nj); err != nil {
		t.Fatal(err)
	}
	return s, nj.Job.ID
}

func TestAttemptLifecycle(t *testing.T) {
	s, id := chainOfTwo(t)
	ctx := context.Background()
	w := store.Worker{WorkerID: "w1", Node: "n1", GPUUUID: "GPU-1", GPUName: "H100", Backend: "ref", Model: "ref", ModelVersion: "1"}
	tail := fmt.Sprintf("jobs/%s/seg/0/a1/tail.bin", id)
	var built []store.Segment
	next := func(sg store.Segment) (store.OutboxMsg, error) {
		built = append(built, sg)
		return store.OutboxMsg{MsgID: id + ".1.1.task", Subject: "spool.segments.default", Payload: sg.Task}, nil
	}
	first, msg, err := s.HandOff(ctx, store.TailReady{JobID: id, Index: 0, Attempt: 1, TailKey: tail, Worker: w}, next)
	if err != nil || !first || msg == nil || len(built) != 1 || built[0].Index != 1 || string(built[0].Task) != "\x09" {
		t.Fatalf("hand-off: first %v msg %v built %+v %v", first, msg, built, err)
	}
	if again, msg, _ := s.HandOff(ctx, store.TailReady{JobID: id, Index: 0, Attempt: 1, TailKey: tail}, next); again || msg != nil {
		t.Fatal("a second TAIL_READY released again")
	}
	segs, _ := s.ListSegments(ctx, id)
	if segs[0].State != store.SegTailReady || segs[0].TailKey != tail || segs[0].Attempts != 1 ||
		segs[1].State != store.SegQueued || segs[1].ConditioningKey != tail {
		t.Fatalf("segments %+v", segs)
	}
	attempts, _ := s.ListAttempts(ctx, id, 0)
	if len(attempts) != 1 || attempts[0].Outcome != store.OutcomeTailReady || attempts[0].Worker != w || attempts[0].StartedAt == nil {
		t.Fatalf("attempts %+v", attempts)
	}
}

func TestOutboxClaimsNeverOverlap(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 200)
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := s.PublishOutbox(ctx, 7, func(msgs []store.OutboxMsg) (int, error) {
					mu.Lock()
					for _, m := range msgs {
						seen[m.MsgID]++
					}
					mu.Unlock()
					time.Sleep(time.Millisecond)
					return len(msgs), nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, m := range nj.Outbox {
		if seen[m.MsgID] != 1 {
			t.Fatalf("%s published %d times", m.MsgID, seen[m.MsgID])
		}
	}
	// A publisher that stops early leaves the rest for later.
	more := newJob(t, 3)
	_, _ = s.CreateJob(ctx, more)
	n, err := s.PublishOutbox(ctx, 10, func(msgs []store.OutboxMsg) (int, error) { return 1, errors.New("nats down") })
	if err == nil || n != 1 {
		t.Fatalf("partial publish: %d %v", n, err)
	}
	if left, _ := s.UnsentOutbox(ctx); left != 2 {
		t.Fatalf("%d rows left, want 2", left)
	}
}

func TestListJobsPaging(t *testing.T) {
	dsn := freshDB(t)
	s := open(t, dsn)
	ctx := context.Background()
	var ids []string
	for range 7 {
		nj := newJob(t, 1)
		if _, err := s.CreateJob(ctx, nj); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, nj.Job.ID)
	}
	var got []string
	var cur *store.Cursor
	for pages := 0; ; pages++ {
		page, next, err := s.ListJobs(ctx, store.ListJobsParams{Tenant: "acme", Limit: 3, After: cur})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page {
			got = append(got, j.ID)
		}
		if next == nil {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		cur = next
	}
	if len(got) != 7 || got[0] != ids[6] || got[6] != ids[0] {
		t.Fatalf("paged %v, created %v", got, ids)
	}
	if none, _, _ := s.ListJobs(ctx, store.ListJobsParams{Tenant: "other"}); len(none) != 0 {
		t.Fatal("tenant filter leaks")
	}
	moved, err := s.SetJobState(ctx, ids[0], []store.JobState{store.JobQueued}, store.JobRunning)
	if err != nil || !moved {
		t.Fatal(moved, err)
	}
	if moved, _ := s.SetJobState(ctx, ids[0], []store.JobState{store.JobQueued}, store.JobRunning); moved {
		t.Fatal("guarded transition moved twice")
	}
	running, _, _ := s.ListJobs(ctx, store.ListJobsParams{State: store.JobRunning})
	if len(running) != 1 || running[0].StartedAt == nil {
		t.Fatalf("running %+v", running)
	}
}

// TestCommitDoneBatch: a batch commits each segment once, whatever the
// duplicates inside it and across batches, and counts progress right.
func TestCommitDoneBatch(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 4)
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	id := nj.Job.ID
	done := func(idx, attempt int) store.SegmentDone {
		return store.SegmentDone{JobID: id, Index: idx, Attempt: attempt, SHA256: strings.Repeat("e", 64),
			VideoKey: fmt.Sprintf("jobs/%s/seg/%d/a%d/video.m4s", id, idx, attempt)}
	}
	var events []store.Progress
	ev := func(job string, p store.Progress) (store.OutboxMsg, error) {
		events = append(events, p)
		return store.OutboxMsg{MsgID: fmt.Sprintf("%s.done.%d", job, p.SegmentsDone), Subject: "spool.events." + job, Payload: []byte{1}}, nil
	}
	got, err := s.CommitDoneBatch(ctx, []store.SegmentDone{done(0, 1), done(1, 1), done(0, 2), done(1, 1), {JobID: id, Index: 9, Attempt: 1}}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[true true false false false]" || len(events) != 1 || events[0].SegmentsDone != 2 || events[0].Progress != 0.5 {
		t.Fatalf("first batch %v, events %+v", got, events)
	}
	got, err = s.CommitDoneBatch(ctx, []store.SegmentDone{done(0, 1), done(2, 1), done(3, 3)}, ev)
	if err != nil || fmt.Sprint(got) != "[false true true]" {
		t.Fatalf("second batch %v %v", got, err)
	}
	j, _ := s.GetJob(ctx, id)
	if j.SegmentsDone != 4 || j.Progress != 1 || j.State != store.JobRunning {
		t.Fatalf("job %+v", j)
	}
	attempts, _ := s.ListAttempts(ctx, id, 0)
	if len(attempts) != 2 || attempts[1].Outcome != store.OutcomeDuplicate {
		t.Fatalf("attempts of segment 0: %+v", attempts)
	}
}

// TestHandOffPrepared: the one-round-trip hand-off releases the next
// segment once, and only if it is pending.
func TestHandOffPrepared(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 3)
	nj.Segments[0].State = store.SegQueued
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	id := nj.Job.ID
	tail := fmt.Sprintf("jobs/%s/seg/0/a1/tail.bin", id)
	msg := store.OutboxMsg{MsgID: id + ".1.1.task.prepared", Subject: "spool.segments.default", Payload: []byte{7}}
	before, _ := s.UnsentOutbox(ctx)
	first, released, err := s.HandOffPrepared(ctx, store.TailReady{JobID: id, Index: 0, Attempt: 1, TailKey: tail}, msg)
	if err != nil || !first || !released {
		t.Fatalf("hand-off: first %v released %v %v", first, released, err)
	}
	first, released, err = s.HandOffPrepared(ctx, store.TailReady{JobID: id, Index: 0, Attempt: 1, TailKey: tail}, msg)
	if err != nil || first || released {
		t.Fatalf("second hand-off: first %v released %v %v", first, released, err)
	}
	after, _ := s.UnsentOutbox(ctx)
	segs, _ := s.ListSegments(ctx, id)
	if after != before+1 || segs[1].State != store.SegQueued || segs[1].ConditioningKey != tail || segs[0].TailKey != tail {
		t.Fatalf("outbox %d→%d, segments %+v", before, after, segs[:2])
	}
	// The last segment's tail releases nothing.
	_, released, err = s.HandOffPrepared(ctx, store.TailReady{JobID: id, Index: 2, Attempt: 1, TailKey: "jobs/" + id + "/seg/2/a1/tail.bin"}, msg)
	if err != nil || released {
		t.Fatalf("last segment: %v %v", released, err)
	}
}

// TestAttemptSpansItsWork: the start of an attempt on the timeline is no
// later than its DONE's time less the work its timings account for, so a
// segment whose first report is its DONE (the last of a chain, or any of
// an independent job) or whose TAIL_READY came after denoising still shows
// its length; a later report never moves the start.
func TestAttemptSpansItsWork(t *testing.T) {
	s, id := chainOfTwo(t)
	ctx := context.Background()
	w := store.Worker{WorkerID: "w1"}
	next := func(sg store.Segment) (store.OutboxMsg, error) {
		return store.OutboxMsg{MsgID: id + ".1.1.task", Subject: "spool.segments.default", Payload: sg.Task}, nil
	}
	if _, _, err := s.HandOff(ctx, store.TailReady{JobID: id, Index: 0, Attempt: 1, TailKey: fmt.Sprintf("jobs/%s/seg/0/a1/tail.bin", id), Worker: w}, next); err != nil {
		t.Fatal(err)
	}
	timings := store.Timings{DenoiseMS: 1200, DecodeMS: 100, EncodeMS: 150, UploadMS: 50}
	for idx := range 2 { // segment 0 after its TAIL_READY, segment 1 with DONE first
		if _, err := s.CommitDoneBatch(ctx, []store.SegmentDone{{JobID: id, Index: idx, Attempt: 1, Worker: w,
			VideoKey: fmt.Sprintf("jobs/%s/seg/%d/a1/video.m4s", id, idx), SHA256: strings.Repeat("a", 64), Timings: timings}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A DONE redelivered later, read as a duplicate of itself, changes nothing.
	time.Sleep(50 * time.Millisecond)
	if _, err := s.CommitDoneBatch(ctx, []store.SegmentDone{{JobID: id, Index: 1, Attempt: 1, Worker: w, Timings: store.Timings{DenoiseMS: 1}}}, nil); err != nil {
		t.Fatal(err)
	}
	for idx := range 2 {
		a, err := s.ListAttempts(ctx, id, idx)
		if err != nil || len(a) != 1 || a[0].StartedAt == nil || a[0].FinishedAt == nil {
			t.Fatalf("segment %d: attempts %+v, %v", idx, a, err)
		}
		if span := a[0].FinishedAt.Sub(*a[0].StartedAt); span < 1500*time.Millisecond || span > 1700*time.Millisecond {
			t.Errorf("segment %d: the attempt spans %v, want its 1.5 s of work", idx, span)
		}
	}
}
