package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

// brokenReader yields its bytes, then fails.
type brokenReader struct{ r io.Reader }

func (b brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}

// TestStreamTo stores bodies of every shape through streamTo: whole and
// hashed when within the limit; nothing at all (no object, no multipart
// upload left) when over it, empty or broken off.
func TestStreamTo(t *testing.T) {
	c := devstacktest.Connect(t, 0)
	ctx := context.Background()
	const part = blob.MinPartSize
	data := make([]byte, 3*part+12345)
	_, _ = rand.Read(data)
	cases := []struct {
		name  string
		body  io.Reader
		limit int64
		want  []byte // stored; nil for nothing
		err   error  // errors.Is, or nil
		read  bool   // a readError
	}{
		{"parts and a rest", bytes.NewReader(data), int64(len(data)), data, nil, false},
		{"whole parts", bytes.NewReader(data[:2*part]), 2 * part, data[:2*part], nil, false},
		{"one small part", bytes.NewReader(data[:1000]), 1 << 30, data[:1000], nil, false},
		{"over the limit by a byte", bytes.NewReader(data), int64(len(data)) - 1, nil, errTooLarge, false},
		{"over the limit in the first part", bytes.NewReader(data), 1000, nil, errTooLarge, false},
		{"empty", bytes.NewReader(nil), 1 << 30, nil, nil, false},
		{"broken off", brokenReader{bytes.NewReader(data[:2*part+7])}, 1 << 30, nil, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, _ := blob.UploadSource("streamtest", blob.NewUploadID())
			s, err := streamTo(ctx, c.Blob, key, tc.body, tc.limit, &partPool{size: part}, "video/mp4")
			var re *readError
			switch {
			case tc.read && !errors.As(err, &re):
				t.Fatalf("error %v, want a read error", err)
			case !tc.read && !errors.Is(err, tc.err):
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.want != nil {
				sum := sha256.Sum256(tc.want)
				if s.Bytes != int64(len(tc.want)) || s.SHA256 != hex.EncodeToString(sum[:]) {
					t.Fatalf("streamed %+v, want %d bytes", s, len(tc.want))
				}
				rd, _, err := c.Blob.Get(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(rd)
				rd.Close()
				if !bytes.Equal(got, tc.want) {
					t.Fatalf("stored %d bytes that differ", len(got))
				}
				return
			}
			if s != (streamed{}) {
				t.Fatalf("streamed %+v of nothing stored", s)
			}
			if _, err := c.Blob.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("an object is left: %v", err)
			}
			if ids, err := c.Blob.IncompleteUploads(ctx, key); err != nil || len(ids) != 0 {
				t.Fatalf("multipart uploads left: %v %v", ids, err)
			}
		})
	}
}
