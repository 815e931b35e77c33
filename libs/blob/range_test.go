package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/spoolvideo/spool/libs/blob"
)

// TestReadRange reads ranges of an object: inside, to its end, none, and
// past its end (an error, never short data); a missing key is ErrNotFound.
func TestReadRange(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k, _ := blob.SegmentTail("read-range", 0, 1)
	data := random(t, 100_000)
	if _, err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data)), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 1}, {1000, 4096}, {99_000, 1000}, {0, 100_000}, {50_000, 0}} {
		got, err := s.ReadRange(ctx, k, r[0], r[1])
		if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: %d bytes, %v", r, len(got), err)
		}
	}
	for _, r := range [][2]int64{{99_000, 1001}, {100_000, 1}, {200_000, 10}} {
		if got, err := s.ReadRange(ctx, k, r[0], r[1]); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("range %v past the end: %d bytes, %v", r, len(got), err)
		}
	}
	if _, err := s.ReadRange(ctx, k, -1, 10); err == nil {
		t.Fatal("a negative offset was read")
	}
	missing, _ := blob.SegmentTail("read-range", 9, 1)
	if _, err := s.ReadRange(ctx, missing, 0, 10); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a missing key: %v", err)
	}
}
