package blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spoolvideo/spool/libs/blob"
)

// TestDeletePrefix: every object under a job's prefix goes, in more than
// one batch, with the multipart upload left open there; a neighbour whose
// id extends the job's stays; a second call removes nothing and succeeds;
// a prefix that is no folder is refused.
func TestDeletePrefix(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	put := func(k blob.Key) {
		t.Helper()
		if _, err := s.Put(ctx, k, bytes.NewReader([]byte("x")), 1, blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 1203 // two DeleteObjects requests
	for i := range n {
		k, _ := blob.HLSSegment("del-job", uint32(i))
		put(k)
	}
	final, _ := blob.Final("del-job")
	upload, err := s.NewMultipart(ctx, final, blob.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := blob.Final("del-job2")
	put(other)

	prefix, _ := blob.JobPrefix("del-job")
	got, err := s.DeletePrefix(ctx, prefix, final)
	if err != nil || got != n {
		t.Fatalf("delete: %d objects, %v; want %d", got, err, n)
	}
	if left, err := s.List(ctx, prefix); err != nil || len(left) != 0 {
		t.Fatalf("left under %s: %d, %v", prefix, len(left), err)
	}
	if _, err := s.ListParts(ctx, final, upload); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the open multipart upload was not aborted: %v", err)
	}
	if _, err := s.Stat(ctx, other); err != nil {
		t.Fatalf("the neighbour job's object went: %v", err)
	}
	if got, err := s.DeletePrefix(ctx, prefix); err != nil || got != 0 {
		t.Fatalf("again: %d, %v", got, err)
	}
	for _, bad := range []blob.Key{"", "jobs/", "jobs/x", "jobs"} {
		if _, err := s.DeletePrefix(ctx, bad); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("prefix %q: %v", bad, err)
		}
	}
	if _, err := s.DeletePrefix(ctx, prefix, other); !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("an upload key outside the prefix: %v", err)
	}
}

// TestDeletePrefixStopsWithItsContext: a context that ends stops the
// deletion with its error; another call finishes it.
func TestDeletePrefixStopsWithItsContext(t *testing.T) {
	s := open(t)
	for i := range 5 {
		k, _ := blob.HLSSegment("del-ctx", uint32(i))
		if _, err := s.Put(context.Background(), k, bytes.NewReader([]byte("x")), 1, blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	prefix, _ := blob.JobPrefix("del-ctx")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.DeletePrefix(ctx, prefix); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if n, err := s.DeletePrefix(context.Background(), prefix); err != nil || n != 5 {
		t.Fatalf("resumed: %d, %v", n, fmt.Sprint(err))
	}
}
