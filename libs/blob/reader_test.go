package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/spoolvideo/spool/libs/blob"
)

// TestReaderReadsOneVersion: a Reader's Info and bytes are of the version
// its Open found; after the object is overwritten, what was already open
// still reads that version (a short Seek ahead included), and a Seek back
// (which re-opens the stream) fails with ErrChanged rather than read into
// the new version. Unchanged, a Seek anywhere reads on at the new offset.
func TestReaderReadsOneVersion(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	cases := []struct {
		name      string
		size      int
		overwrite bool
		seek      int64
		want      error
	}{
		{name: "unchanged, seek back", size: 40 << 10, seek: 0},
		{name: "unchanged, seek on", size: 3 << 20, seek: 1<<20 + 5},
		{name: "unchanged, seek to the end", size: 1000, seek: 1000},
		{name: "overwritten, seek back", size: 40 << 10, overwrite: true, seek: 17, want: blob.ErrChanged},
		{name: "overwritten, seek on in the stream", size: 40 << 10, overwrite: true, seek: 2000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := blob.Key("reader/" + tc.name)
			v1, v2 := random(t, tc.size), random(t, tc.size+1)
			if _, err := s.Put(ctx, k, bytes.NewReader(v1), int64(len(v1)), blob.PutOptions{ContentType: "video/mp4"}); err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if info := r.Info(); info.Size != int64(tc.size) || info.ETag == "" || info.ContentType != "video/mp4" || info.ModTime.IsZero() {
				t.Fatalf("info %+v", info)
			}
			head := make([]byte, 10)
			if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, v1[:10]) {
				t.Fatalf("first bytes: %v", err)
			}
			if tc.overwrite {
				if _, err := s.Put(ctx, k, bytes.NewReader(v2), int64(len(v2)), blob.PutOptions{}); err != nil {
					t.Fatal(err)
				}
				rest, err := io.ReadAll(io.LimitReader(r, 100))
				if err != nil || !bytes.Equal(rest, v1[10:110]) {
					t.Fatalf("the open stream after an overwrite: %v, %d bytes", err, len(rest))
				}
			}
			if _, err := r.Seek(tc.seek, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("read after seek: %v, want %v", err, tc.want)
			}
			if tc.want == nil && !bytes.Equal(rest, v1[tc.seek:]) {
				t.Fatalf("read %d bytes after seek to %d, not the version's", len(rest), tc.seek)
			}
		})
	}
	if _, err := s.Open(ctx, "reader/none"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("open of a missing key: %v", err)
	}
}
