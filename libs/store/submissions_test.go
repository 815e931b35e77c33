package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/store"
)

// TestSubmissionRecordedOnceAndAdmittedWithItsJob: a submission is
// recorded once per job id (the second one gets the first back); CreateJob
// marks it admitted in the job's transaction, even for a job that existed
// already, and RejectJob does too.
func TestSubmissionRecordedOnceAndAdmittedWithItsJob(t *testing.T) {
	s := db(t)
	ctx := context.Background()
	nj := newJob(t, 2)
	sub := store.Submission{JobID: nj.Job.ID, Tenant: "acme", Spec: []byte{1, 2, 3}, Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	got, created, err := s.RecordSubmission(ctx, sub)
	if err != nil || !created || got.JobID != sub.JobID || string(got.Spec) != string(sub.Spec) || got.Traceparent != sub.Traceparent ||
		got.AcceptedAt.IsZero() || got.AdmittedAt != nil {
		t.Fatalf("first record: %+v %v %v", got, created, err)
	}
	again, created, err := s.RecordSubmission(ctx, store.Submission{JobID: sub.JobID, Tenant: "acme", Spec: []byte{9}})
	if err != nil || created || string(again.Spec) != string(sub.Spec) || !again.AcceptedAt.Equal(got.AcceptedAt) {
		t.Fatalf("second record: %+v %v %v", again, created, err)
	}
	if n, err := s.CountWaitingSubmissions(ctx); err != nil || n < 1 {
		t.Fatalf("waiting %d %v", n, err)
	}
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetSubmission(ctx, sub.JobID); err != nil || got.AdmittedAt == nil {
		t.Fatalf("after CreateJob: %+v %v", got, err)
	}
	if c, err := s.ClaimSubmission(ctx, sub.JobID, "d1", time.Minute); err != nil || c != store.ClaimAdmitted {
		t.Fatalf("claim of an admitted submission: %v %v", c, err)
	}

	// A job that exists already (its message came first) still marks a
	// submission recorded after it.
	late := newJob(t, 1)
	if _, err := s.CreateJob(ctx, late); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RecordSubmission(ctx, store.Submission{JobID: late.Job.ID, Tenant: "acme", Spec: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if created, err := s.CreateJob(ctx, late); err != nil || created {
		t.Fatalf("second CreateJob: %v %v", created, err)
	}
	if got, err := s.GetSubmission(ctx, late.Job.ID); err != nil || got.AdmittedAt == nil {
		t.Fatalf("a job recorded before its submission: %+v %v", got, err)
	}

	rejected := newJob(t, 1).Job
	if _, _, err := s.RecordSubmission(ctx, store.Submission{JobID: rejected.ID, Tenant: "acme", Spec: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	rejected.ErrorCode, rejected.ErrorMessage = "invalid_argument", "no"
	if _, err := s.RejectJob(ctx, rejected); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetSubmission(ctx, rejected.ID); err != nil || got.AdmittedAt == nil {
		t.Fatalf("after RejectJob: %+v %v", got, err)
	}
	if _, err := s.GetSubmission(ctx, "no-such-submission"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing submission: %v", err)
	}
}

// TestSubmissionClaims: concurrent claimers each get a disjoint share of
// the waiting submissions (SKIP LOCKED and the lease); a claim keeps
// ClaimSubmission away (busy), its owner's too, until it is released or
// lapses; a young submission waits out the grace.
func TestSubmissionClaims(t *testing.T) {
	s := open(t, freshDB(t))
	ctx := context.Background()
	const n = 60
	for i := range n {
		if _, _, err := s.RecordSubmission(ctx, store.Submission{JobID: fmt.Sprintf("claim-%d", i), Tenant: "acme", Spec: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if subs, err := s.ClaimSubmissions(ctx, "early", time.Hour, time.Minute, n); err != nil || len(subs) != 0 {
		t.Fatalf("claimed %d younger than the grace (%v)", len(subs), err)
	}
	var mu sync.Mutex
	owners := map[string]string{}
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("d%d", c)
			for {
				subs, err := s.ClaimSubmissions(ctx, owner, 0, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(subs) == 0 {
					return
				}
				mu.Lock()
				for _, sub := range subs {
					if was, ok := owners[sub.JobID]; ok {
						t.Errorf("%s claimed by %s and %s", sub.JobID, was, owner)
					}
					owners[sub.JobID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(owners) != n {
		t.Fatalf("%d of %d submissions claimed", len(owners), n)
	}
	id, holder := "claim-0", owners["claim-0"]
	if c, err := s.ClaimSubmission(ctx, id, "other", time.Minute); err != nil || c != store.ClaimBusy {
		t.Fatalf("claim of a held submission: %v %v", c, err)
	}
	if c, err := s.ClaimSubmission(ctx, id, holder, time.Minute); err != nil || c != store.ClaimBusy {
		t.Fatalf("its holder's claim again (the holder's batch has it): %v %v", c, err)
	}
	if err := s.ReleaseSubmission(ctx, id, holder); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ClaimSubmission(ctx, id, "other", 50*time.Millisecond); err != nil || c != store.ClaimTaken {
		t.Fatalf("claim after release: %v %v", c, err)
	}
	if c, err := s.ClaimSubmission(ctx, "no-such", "other", time.Minute); err != nil || c != store.ClaimNone {
		t.Fatalf("claim of no submission: %v %v", c, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		subs, err := s.ClaimSubmissions(ctx, "third", 0, time.Minute, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) == 1 && subs[0].JobID == id {
			break // the short claim lapsed; the others' leases hold
		}
		if len(subs) > 1 || time.Now().After(deadline) {
			t.Fatalf("after the short claim: %d claimed", len(subs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
