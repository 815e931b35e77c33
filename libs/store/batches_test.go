package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/spoolvideo/spool/libs/store"
)

// TestSaveBatch: a batch is stored with its items; GetBatch joins each
// item's job once the dispatcher has recorded it; a retry fills in the
// items that were refused but never changes one that became a job; a
// retry with another spec count or tenant is ErrConflict.
func TestSaveBatch(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 1)
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	b := store.Batch{ID: "b-save", Tenant: "acme", Jobs: 3, Items: []store.BatchItem{
		{Index: 0, JobID: nj.Job.ID},
		{Index: 1, ErrorCode: "invalid_argument", ErrorField: "fps", ErrorMessage: "fps 500: want 1..240"},
		{Index: 2, JobID: "b-save-2"}, // submitted, not recorded yet
	}}
	got, err := s.SaveBatch(ctx, b)
	if err != nil || got.Jobs != 3 || len(got.Items) != 3 || got.Items[1].ErrorField != "fps" || got.CreatedAt.IsZero() {
		t.Fatalf("saved %+v, %v", got, err)
	}
	full, err := s.GetBatch(ctx, "b-save")
	if err != nil || full.Items[0].Job == nil || full.Items[0].Job.ID != nj.Job.ID || full.Items[1].Job != nil || full.Items[2].Job != nil {
		t.Fatalf("get %+v, %v", full, err)
	}

	retry := b
	retry.Items = []store.BatchItem{
		{Index: 0, ErrorCode: "unavailable", ErrorMessage: "nats down"}, // a job already: kept
		{Index: 1, JobID: "b-save-1"},                                   // refused before: now a job
		{Index: 2, JobID: "b-save-2"},
	}
	got, err = s.SaveBatch(ctx, retry)
	if err != nil || got.Items[0].JobID != nj.Job.ID || got.Items[1].JobID != "b-save-1" || got.Items[1].ErrorCode != "" {
		t.Fatalf("retry %+v, %v", got, err)
	}
	other := retry
	other.Jobs, other.Items = 2, retry.Items[:2]
	if _, err := s.SaveBatch(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("another count: %v", err)
	}
	other = retry
	other.Tenant = "beta"
	if _, err := s.SaveBatch(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("another tenant: %v", err)
	}
	if _, err := s.GetBatch(ctx, "b-none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no batch: %v", err)
	}
	if n, err := s.CountJobs(ctx, []string{nj.Job.ID, "b-save-2"}); err != nil || n != 1 {
		t.Fatalf("count %d %v", n, err)
	}
}
