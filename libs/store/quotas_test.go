package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/store"
)

// quotaTenant is a tenant of the test's own, so that tests sharing the
// database never count each other's submissions.
func quotaTenant(t *testing.T, suffix string) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return fmt.Sprintf("%s-%s-%d", name[:min(len(name), 40)], suffix, jobSeq.Add(1))
}

func submission(t *testing.T, tenant string) store.Submission {
	return store.Submission{JobID: fmt.Sprintf("q-%s-%d", tenant, jobSeq.Add(1)), Tenant: tenant, Spec: []byte{1}}
}

var day = time.Date(2031, 3, 4, 15, 0, 0, 0, time.UTC)

// TestQueuedJobsQuota: a tenant at its queued-jobs quota is refused with
// a *QuotaError naming the use and the limit, and nothing is recorded;
// another tenant still submits; a retry of a recorded submission is not
// refused; a job that ends frees its slot; an override beats the default.
func TestQueuedJobsQuota(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	acme, other := quotaTenant(t, "acme"), quotaTenant(t, "other")
	q := store.SubmissionQuota{QueuedJobs: 2, Seconds: 1, Day: day}
	var first store.Submission
	for i := range 2 {
		sub := submission(t, acme)
		if _, created, err := s.RecordSubmissionWithin(ctx, sub, q); err != nil || !created {
			t.Fatalf("submission %d: %v %v", i, created, err)
		}
		if i == 0 {
			first = sub
		}
	}
	refused := submission(t, acme)
	_, created, err := s.RecordSubmissionWithin(ctx, refused, q)
	var qe *store.QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, store.ErrQuotaExceeded) || created || qe.Quota != store.QuotaQueuedJobs || qe.Use != 2 ||
		qe.Limit != 2 || qe.Error() != fmt.Sprintf("tenant %s: 2 queued jobs, the quota is 2", acme) {
		t.Fatalf("third submission: %v %v", created, err)
	}
	if _, err := s.GetSubmission(ctx, refused.JobID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused submission was recorded: %v", err)
	}
	if u, err := s.QuotaUse(ctx, acme, day); err != nil || u.QueuedJobs != 2 || u.DailySeconds != 2 {
		t.Fatalf("use %+v %v: want 2 jobs and 2 s (the refused one's second not counted)", u, err)
	}
	if _, created, err := s.RecordSubmissionWithin(ctx, first, q); err != nil || created {
		t.Fatalf("a retry at the quota: %v %v", created, err)
	}
	if _, created, err := s.RecordSubmissionWithin(ctx, submission(t, other), q); err != nil || !created {
		t.Fatalf("another tenant: %v %v", created, err)
	}

	// The first submission's job is recorded, then cancelled: a slot frees.
	nj := newJob(t, 1)
	nj.Job.ID, nj.Job.Tenant = first.JobID, acme
	nj.Outbox = nil
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q); !errors.As(err, &qe) || created {
		t.Fatalf("a queued job still counts: %v %v", created, err)
	}
	if _, err := s.CancelJob(ctx, first.JobID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q); err != nil || !created {
		t.Fatalf("after a job ended: %v %v", created, err)
	}

	three := 3
	if _, err := s.SetQuota(ctx, store.Quota{Tenant: acme, QueuedJobs: &three}); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q); err != nil || !created {
		t.Fatalf("under the override: %v %v", created, err)
	}
	if _, _, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q); !errors.As(err, &qe) || qe.Limit != 3 || qe.Use != 3 {
		t.Fatalf("at the override: %v", err)
	}
}

// TestQueuedJobsQuotaConcurrent: submissions of one tenant racing each
// other never pass its quota together.
func TestQueuedJobsQuotaConcurrent(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	acme := quotaTenant(t, "acme")
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, refused := 0, 0
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.RecordSubmissionWithin(ctx, submission(t, acme), store.SubmissionQuota{QueuedJobs: 5, Day: day})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, store.ErrQuotaExceeded):
				refused++
			case err != nil:
				t.Error(err)
			case ok:
				created++
			}
		}()
	}
	wg.Wait()
	if created != 5 || refused != 7 {
		t.Fatalf("%d recorded, %d refused: want 5 and 7", created, refused)
	}
}

// TestDailySecondsQuota: a job that would pass the day's quota is refused
// and not counted, one that reaches it exactly passes; a live job passes
// while some of the day is left; the next day starts from nothing; an
// override of 0 lifts the quota.
func TestDailySecondsQuota(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	acme := quotaTenant(t, "acme")
	q := func(sec float64, d time.Time) store.SubmissionQuota {
		return store.SubmissionQuota{DailySeconds: 100, Seconds: sec, Day: d}
	}
	var qe *store.QuotaError
	if _, ok, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q(0, day)); err != nil || !ok {
		t.Fatalf("a live job on a fresh day: %v %v", ok, err)
	}
	if _, ok, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q(60, day)); err != nil || !ok {
		t.Fatalf("60 s: %v %v", ok, err)
	}
	sub := submission(t, acme)
	_, ok, err := s.RecordSubmissionWithin(ctx, sub, q(50, day.Add(8*time.Hour)))
	if !errors.As(err, &qe) || ok || qe.Quota != store.QuotaDailySeconds || qe.Use != 60 || qe.Ask != 50 || qe.Limit != 100 ||
		!qe.Day.Equal(time.Date(2031, 3, 4, 0, 0, 0, 0, time.UTC)) || !strings.Contains(qe.Error(), "60 s of video requested on 2031-03-04") {
		t.Fatalf("50 s more: %v %v", ok, err)
	}
	if _, err := s.GetSubmission(ctx, sub.JobID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused submission was recorded: %v", err)
	}
	// 40 s more, in two jobs of 474 frames at 24 fps and one of 0.5 s:
	// the day's total is counted in milliseconds, so the sum is exact.
	for i, sec := range []float64{474.0 / 24, 474.0 / 24, 0.5} {
		if _, ok, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q(sec, day)); err != nil || !ok {
			t.Fatalf("job %d of the last 40 s: %v %v", i, ok, err)
		}
	}
	if _, _, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q(0, day)); !errors.As(err, &qe) || qe.Use != 100 {
		t.Fatalf("a live job once the day is spent: %v", err)
	}
	if _, ok, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q(60, day.Add(9*time.Hour))); err != nil || !ok {
		t.Fatalf("the next day: %v %v", ok, err)
	}
	zero := int64(0)
	if _, err := s.SetQuota(ctx, store.Quota{Tenant: acme, DailySeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.RecordSubmissionWithin(ctx, submission(t, acme), q(5000, day)); err != nil || !ok {
		t.Fatalf("unlimited by the override: %v %v", ok, err)
	}
	if u, err := s.QuotaUse(ctx, acme, day); err != nil || u.DailySeconds != 5100 {
		t.Fatalf("use %+v %v: want 5100 s", u, err)
	}
}

// TestSetQuota: overrides are stored, replaced, read back and removed; a
// negative limit is refused.
func TestSetQuota(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	acme := quotaTenant(t, "acme")
	if q, err := s.GetQuota(ctx, acme); err != nil || q.QueuedJobs != nil || q.RunningSegments != nil || q.DailySeconds != nil ||
		!q.UpdatedAt.IsZero() {
		t.Fatalf("no overrides: %+v %v", q, err)
	}
	two, hour := 2, int64(3600)
	if q, err := s.SetQuota(ctx, store.Quota{Tenant: acme, RunningSegments: &two, DailySeconds: &hour}); err != nil ||
		q.QueuedJobs != nil || *q.RunningSegments != 2 || *q.DailySeconds != 3600 || q.UpdatedAt.IsZero() {
		t.Fatalf("set: %+v %v", q, err)
	}
	if q, err := s.SetQuota(ctx, store.Quota{Tenant: acme, QueuedJobs: &two}); err != nil || *q.QueuedJobs != 2 || q.RunningSegments != nil ||
		q.DailySeconds != nil {
		t.Fatalf("replace: %+v %v", q, err)
	}
	if q, err := s.GetQuota(ctx, acme); err != nil || *q.QueuedJobs != 2 || q.RunningSegments != nil {
		t.Fatalf("get: %+v %v", q, err)
	}
	if _, err := s.SetQuota(ctx, store.Quota{Tenant: acme}); err != nil {
		t.Fatal(err)
	}
	if q, err := s.GetQuota(ctx, acme); err != nil || q.QueuedJobs != nil || !q.UpdatedAt.IsZero() {
		t.Fatalf("removed: %+v %v", q, err)
	}
	minus := -1
	if _, err := s.SetQuota(ctx, store.Quota{Tenant: acme, QueuedJobs: &minus}); err == nil {
		t.Fatal("a negative limit was stored")
	}
}

// TestAdmitReadyRunningLimit: admission holds a tenant at its running
// limit (the default, or its override) while another tenant's segments go
// ahead, and admits more of its segments as its running ones finish.
func TestAdmitReadyRunningLimit(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	pool := fmt.Sprintf("quota-%d", jobSeq.Add(1))
	job := func(tenant string, segments int) string {
		nj := newJob(t, segments)
		nj.Job.Tenant, nj.Job.Pool, nj.Job.Mode, nj.Outbox = tenant, pool, "independent", nil
		for i := range nj.Segments {
			nj.Segments[i].State, nj.Segments[i].Pool = store.SegReady, pool
		}
		if _, err := s.CreateJob(ctx, nj); err != nil {
			t.Fatal(err)
		}
		return nj.Job.ID
	}
	acme, beta := quotaTenant(t, "acme"), quotaTenant(t, "beta")
	a, b := job(acme, 6), job(beta, 6)
	one := 1
	if _, err := s.SetQuota(ctx, store.Quota{Tenant: beta, RunningSegments: &one}); err != nil {
		t.Fatal(err)
	}
	admit := func() map[string]int {
		got := map[string]int{}
		_, err := s.AdmitReady(ctx, pool, 16, 0, 2, func(sg store.Segment) (store.OutboxMsg, error) {
			got[sg.JobID]++
			return store.OutboxMsg{MsgID: fmt.Sprintf("%s.%d.task", sg.JobID, sg.Index), Subject: "spool.segments." + pool, Payload: []byte{0}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := admit(); got[a] != 2 || got[b] != 1 {
		t.Fatalf("admitted %v: want 2 of %s (the default) and 1 of %s (its override)", got, a, b)
	}
	if got := admit(); len(got) != 0 {
		t.Fatalf("admitted %v at the limits", got)
	}
	if u, err := s.QuotaUse(ctx, acme, day); err != nil || u.RunningSegments != 2 {
		t.Fatalf("use %+v %v", u, err)
	}
	segs, err := s.ListSegments(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitDoneBatch(ctx, []store.SegmentDone{{JobID: a, Index: segs[0].Index, Attempt: 1, VideoKey: "jobs/" + a + "/seg.m4s",
		SHA256: strings.Repeat("ab", 32), Bytes: 1, Frames: 84}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := admit(); got[a] != 1 || got[b] != 0 {
		t.Fatalf("after one of %s finished, admitted %v: want 1 more of it", a, got)
	}
}

// TestMigrationGap: a database that ran a migration before an earlier
// version existed (another branch's, merged later) applies that one when
// it appears, out of order.
func TestMigrationGap(t *testing.T) {
	dsn := freshDB(t)
	s, err := store.Open(context.Background(), config.Postgres{DSN: config.Secret(dsn)}, store.WithoutMigrations())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	files, err := store.MigrationFiles()
	if err != nil {
		t.Fatal(err)
	}
	all, without := fstest.MapFS{}, fstest.MapFS{}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		t.Fatal(err)
	}
	gap := ""
	for _, e := range entries {
		data, err := fs.ReadFile(files, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		all[e.Name()] = &fstest.MapFile{Data: data}
		if strings.HasPrefix(e.Name(), "00013_") {
			gap = e.Name()
			continue
		}
		without[e.Name()] = &fstest.MapFile{Data: data}
	}
	if gap == "" { // no version 13 yet: one that stands in for it
		gap = "00013_gap.sql"
		all[gap] = &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE gap_probe (x int);\n-- +goose Down\nDROP TABLE gap_probe;\n")}
	}
	ctx := context.Background()
	if err := store.MigrateFrom(ctx, s, without); err != nil {
		t.Fatalf("without %s: %v", gap, err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v < 14 {
		t.Fatalf("version %d %v: want ≥ 14", v, err)
	}
	if err := store.MigrateFrom(ctx, s, all); err != nil {
		t.Fatalf("%s appearing later: %v", gap, err)
	}
	if err := store.MigrateFrom(ctx, s, all); err != nil {
		t.Fatalf("again: %v", err)
	}
}
