package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
)

// endedJob records a job of tenant and moves it to state.
func endedJob(t *testing.T, s *store.Store, tenant string, state store.JobState) string {
	t.Helper()
	ctx := context.Background()
	nj := newJob(t, 1)
	nj.Job.Tenant = tenant
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	if state != store.JobQueued {
		if ok, err := s.SetJobState(ctx, nj.Job.ID, []store.JobState{store.JobQueued}, state); !ok || err != nil {
			t.Fatalf("job %s to %s: %v %v", nj.Job.ID, state, ok, err)
		}
	}
	return nj.Job.ID
}

func ids(es []store.Expired) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	sort.Strings(out)
	return out
}

// TestClaimExpiredJobs: a janitor claims the finished jobs past their
// tenant's TTL (an override beats the default; zero keeps for ever), never
// a queued one or one whose stitch is still open; a claim held keeps other
// janitors off until it lapses; MarkJobDeleted keeps the state and the
// lineage, marks the artifacts, and is idempotent.
func TestClaimExpiredJobs(t *testing.T) {
	s := open(t, freshDB(t))
	ctx := context.Background()
	short := endedJob(t, s, "short", store.JobSucceeded)
	failed := endedJob(t, s, "short", store.JobFailed)
	queued := endedJob(t, s, "short", store.JobQueued)
	closing := endedJob(t, s, "short", store.JobCancelled)
	if err := s.ExecForTest(ctx, `INSERT INTO stitches (job_id, upload_id) VALUES ($1, 'u')`, closing); err != nil {
		t.Fatal(err)
	}
	held := endedJob(t, s, "short", store.JobCancelled) // a worker still uploads its segment
	if err := s.ExecForTest(ctx, `INSERT INTO attempts (job_id, idx, attempt, outcome) VALUES ($1, 0, 1, 'running')`, held); err != nil {
		t.Fatal(err)
	}
	kept := endedJob(t, s, "kept", store.JobSucceeded)    // the default: an hour
	forever := endedJob(t, s, "forever", store.JobFailed) // zero
	if _, err := s.RecordArtifact(ctx, store.Artifact{Key: "jobs/" + short + "/hls/index.m3u8", JobID: short, Kind: store.KindHLS}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	ttl := store.TTLs{Default: time.Hour, Tenants: map[string]time.Duration{"short": time.Millisecond, "forever": 0}}

	// a's lease is long enough that b's claim just below comes within it on
	// a loaded machine, and short enough to wait out.
	const lease = 2 * time.Second
	got, err := s.ClaimExpiredJobs(ctx, "a", ttl, lease, 10)
	if want := []string{failed, short}; err != nil || !slices.Equal(ids(got), sortedCopy(want)) {
		t.Fatalf("claimed %v, %v; want %v (not %s queued, %s closing, %s held, %s kept, %s forever)", ids(got), err, want, queued, closing,
			held, kept, forever)
	}
	if got[0].Tenant != "short" {
		t.Fatalf("tenant %q", got[0].Tenant)
	}
	if again, err := s.ClaimExpiredJobs(ctx, "b", ttl, time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("a second janitor took held claims: %v %v", ids(again), err)
	}
	time.Sleep(lease + 100*time.Millisecond) // a's claims lapse: a died mid-sweep
	resumed, err := s.ClaimExpiredJobs(ctx, "b", ttl, time.Minute, 10)
	if err != nil || !slices.Equal(ids(resumed), ids(got)) {
		t.Fatalf("resumed %v, %v; want %v", ids(resumed), err, ids(got))
	}

	at, err := s.MarkJobDeleted(ctx, short)
	if err != nil || at.IsZero() {
		t.Fatalf("mark: %v %v", at, err)
	}
	if again, err := s.MarkJobDeleted(ctx, short); err != nil || !again.Equal(at) {
		t.Fatalf("mark again: %v %v; want %v", again, err, at)
	}
	j, err := s.GetJob(ctx, short)
	if err != nil || j.State != store.JobSucceeded || j.DeletedAt == nil || !j.DeletedAt.Equal(at) {
		t.Fatalf("deleted job: %+v %v", j, err)
	}
	if segs, err := s.ListSegments(ctx, short); err != nil || len(segs) != 1 {
		t.Fatalf("lineage: %d segments, %v", len(segs), err)
	}
	if arts, err := s.ListArtifacts(ctx, short); err != nil || len(arts) != 1 {
		t.Fatalf("artifacts: %v %v", arts, err)
	}
	if _, err := s.MarkJobDeleted(ctx, queued); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a queued job: %v", err)
	}
	if _, err := s.MarkJobDeleted(ctx, closing); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a job with an open stitch: %v", err)
	}
	if _, err := s.MarkJobDeleted(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no job: %v", err)
	}
	if fin, err := s.JobFinished(ctx, closing); err != nil || fin {
		t.Fatalf("finished with an open stitch: %v %v", fin, err)
	}
	if fin, err := s.JobFinished(ctx, failed); err != nil || !fin {
		t.Fatalf("failed job not finished: %v %v", fin, err)
	}
	if fin, err := s.JobFinished(ctx, held); err != nil || fin {
		t.Fatalf("finished while a worker holds a segment: %v %v", fin, err)
	}
	// The worker goes silent: two minutes on, its attempt is taken for dead.
	if err := s.ExecForTest(ctx, `UPDATE segments SET updated_at = now() - interval '3 minutes' WHERE job_id = $1`, held); err != nil {
		t.Fatal(err)
	}
	if fin, err := s.JobFinished(ctx, held); err != nil || !fin {
		t.Fatalf("not finished with a dead worker's attempt: %v %v", fin, err)
	}
	time.Sleep(5 * time.Millisecond)
	if left, err := s.ClaimExpiredJobs(ctx, "c", ttl, time.Minute, 10); err != nil || !slices.Equal(ids(left), []string{held}) {
		t.Fatalf("claims after the sweep: %v %v; want only %s", ids(left), err, held)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestClaimExpiredJobsConcurrently: janitors claiming at once never share
// a job, and together take every one.
func TestClaimExpiredJobsConcurrently(t *testing.T) {
	s := open(t, freshDB(t))
	ctx := context.Background()
	var want []string
	for range 40 {
		want = append(want, endedJob(t, s, "many", store.JobSucceeded))
	}
	time.Sleep(5 * time.Millisecond)
	ttl := store.TTLs{Tenants: map[string]time.Duration{"many": time.Millisecond}}
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := s.ClaimExpiredJobs(ctx, fmt.Sprint("j", w), ttl, time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(c) == 0 {
					return
				}
				mu.Lock()
				got = append(got, ids(c)...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(got)
	if !slices.Equal(got, sortedCopy(want)) {
		t.Fatalf("claimed %d (%v), want each of %d once", len(got), got, len(want))
	}
}

// TestClaimExpiredUploads: unused uploads past their tenant's TTL and
// pending ones past expires_at are claimed, unless a job that is not
// finished refers to them; a finished job's reference keeps nothing.
func TestClaimExpiredUploads(t *testing.T) {
	s := open(t, freshDB(t))
	ctx := context.Background()
	upload := func(id, tenant, state, expires string) {
		t.Helper()
		q := `INSERT INTO uploads (id, tenant, state, object_key, kind, sha256, bytes, completed_at, expires_at)
			VALUES ($1, $2, $3, 'k', 'image', md5($1) || md5($1), 1, now(), now() + $4::interval)`
		if state == "pending" {
			q = `INSERT INTO uploads (id, tenant, state, object_key, expires_at) VALUES ($1, $2, $3, 'k', now() + $4::interval)`
		}
		if err := s.ExecForTest(ctx, q, id, tenant, state, expires); err != nil {
			t.Fatal(err)
		}
	}
	input := func(job, role, up string) {
		t.Helper()
		if err := s.ExecForTest(ctx, `INSERT INTO job_inputs (job_id, role, upload_id) VALUES ($1, $2, $3)`, job, role, up); err != nil {
			t.Fatal(err)
		}
	}
	upload("up-unused", "short", "ready", "1 hour")
	upload("up-running", "short", "ready", "1 hour")
	upload("up-finished", "short", "ready", "1 hour")
	upload("up-lapsed", "forever", "pending", "-1 second")
	upload("up-pending", "forever", "pending", "1 hour")
	upload("up-forever", "forever", "ready", "1 hour")
	upload("up-kept", "kept", "ready", "1 hour")
	running := endedJob(t, s, "short", store.JobQueued)
	if ok, err := s.SetJobState(ctx, running, []store.JobState{store.JobQueued}, store.JobRunning); !ok || err != nil {
		t.Fatal(ok, err)
	}
	input(running, "image", "up-running")
	input(running, "audio", "up-finished")
	done := endedJob(t, s, "short", store.JobSucceeded)
	input(done, "image", "up-finished")
	input(done, "audio", "up-unused")
	time.Sleep(5 * time.Millisecond)
	ttl := store.TTLs{Default: time.Hour, Tenants: map[string]time.Duration{"short": time.Millisecond, "forever": 0}}

	got, err := s.ClaimExpiredUploads(ctx, "a", ttl, time.Minute, 10)
	if want := []string{"up-lapsed", "up-unused"}; err != nil || !slices.Equal(ids(got), want) {
		t.Fatalf("claimed %v, %v; want %v", ids(got), err, want)
	}
	if again, err := s.ClaimExpiredUploads(ctx, "b", ttl, time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("held claims taken: %v %v", ids(again), err)
	}
	// The running job ends: its uploads may go.
	if ok, err := s.SetJobState(ctx, running, []store.JobState{store.JobRunning}, store.JobFailed); !ok || err != nil {
		t.Fatal(ok, err)
	}
	got, err = s.ClaimExpiredUploads(ctx, "b", ttl, time.Minute, 10)
	if want := []string{"up-finished", "up-running"}; err != nil || !slices.Equal(ids(got), want) {
		t.Fatalf("after the job ended: %v, %v; want %v", ids(got), err, want)
	}
	for _, id := range []string{"up-unused", "up-unused"} {
		if err := s.MarkUploadDeleted(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkUploadDeleted(ctx, "up-none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no upload: %v", err)
	}
	// An upload claimed for deletion, or deleted, is gone for a new job:
	// its lookup says so, and creating the job refuses it, naming the role.
	for _, id := range []string{"up-finished", "up-unused"} {
		if _, err := s.Upload(ctx, "short", id); !errors.Is(err, jobspec.ErrNoUpload) {
			t.Errorf("lookup of %s: %v, want ErrNoUpload", id, err)
		}
		nj := newJob(t, 1)
		nj.Job.Tenant, nj.Inputs = "short", []store.JobInput{{Role: "image", UploadID: id}}
		var gone *store.UploadGoneError
		if _, err := s.CreateJob(ctx, nj); !errors.As(err, &gone) || gone.Role != "image" || gone.UploadID != id {
			t.Errorf("job with %s: %v, want an UploadGoneError", id, err)
		}
		if _, err := s.GetJob(ctx, nj.Job.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the refused job %s was recorded: %v", nj.Job.ID, err)
		}
	}
	nj := newJob(t, 1)
	nj.Job.Tenant, nj.Inputs = "forever", []store.JobInput{{Role: "image", UploadID: "up-forever"}}
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatalf("job with a live upload: %v", err)
	}
	if in, err := s.JobInputs(ctx, nj.Job.ID); err != nil || len(in) != 1 || in[0].UploadID != "up-forever" {
		t.Fatalf("inputs %v %v", in, err)
	}
}
