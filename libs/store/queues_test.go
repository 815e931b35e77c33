package store_test

import (
	"context"
	"testing"

	"github.com/spoolvideo/spool/libs/store"
)

// TestPoolQueues: a pool's ready, queued and running segments and its
// waiting jobs are counted per pool; pending segments and finished jobs
// are not.
func TestPoolQueues(t *testing.T) {
	s := open(t, freshDB(t))
	ctx := context.Background()
	nj := newJob(t, 4)
	nj.Job.Pool = "h100"
	for i := range nj.Segments {
		nj.Segments[i].Pool = "h100"
	}
	nj.Segments[0].State, nj.Segments[1].State = store.SegReady, store.SegReady
	nj.Segments[2].State = store.SegQueued // and segment 3 pending
	if _, err := s.CreateJob(ctx, nj); err != nil {
		t.Fatal(err)
	}
	done := newJob(t, 1)
	done.Job.State = store.JobSucceeded
	if _, err := s.CreateJob(ctx, done); err != nil {
		t.Fatal(err)
	}
	qs, err := s.PoolQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 {
		t.Fatalf("queues %+v", qs)
	}
	q := qs[0]
	if q.Pool != "h100" || q.Ready != 2 || q.Queued != 1 || q.Running != 0 || q.WaitingJobs != 1 || q.ActiveJobs != 0 {
		t.Fatalf("queue %+v", q)
	}
}
