package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

// open returns a Store on the real MinIO of the test stack, bucket ensured.
func open(t *testing.T) *blob.Store {
	t.Helper()
	st := devstacktest.Require(t, devstacktest.MinIO)
	s, err := blob.New(config.S3{Endpoint: st.S3Endpoint, AccessKey: st.S3AccessKey,
		SecretKey: config.Secret(st.S3SecretKey), Bucket: st.S3Bucket, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func readAll(t *testing.T, s *blob.Store, k blob.Key) []byte {
	t.Helper()
	r, _, err := s.Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnsureBucketTwiceAndConcurrently(t *testing.T) {
	s := open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.EnsureBucket(context.Background()) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestPutGetStatDelete(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k, _ := blob.SegmentTail("put-get", 0, 1)
	data := random(t, 300_000)
	info, err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data)), blob.PutOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA256 != sum(data) || info.Size != int64(len(data)) {
		t.Fatalf("put reported %+v", info)
	}
	if got := readAll(t, s, k); !bytes.Equal(got, data) {
		t.Fatal("object differs")
	}
	if st, err := s.Stat(ctx, k); err != nil || st.Size != int64(len(data)) {
		t.Fatalf("stat %+v %v", st, err)
	}
	prefix, _ := blob.JobPrefix("put-get")
	if l, err := s.List(ctx, prefix); err != nil || len(l) != 1 || l[0].Key != k {
		t.Fatalf("list %+v %v", l, err)
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, k); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := s.Stat(ctx, k); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("stat after delete: %v", err)
	}
}

// TestMultipartResume uploads two parts, "crashes", finds them again with
// ListParts, and finishes: the object is byte-exact.
func TestMultipartResume(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k, _ := blob.Final("multipart")
	parts := [][]byte{random(t, blob.MinPartSize), random(t, blob.MinPartSize), random(t, 1500)}
	id, err := s.NewMultipart(ctx, k, blob.PutOptions{ContentType: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts[:2] {
		if _, err := s.UploadPart(ctx, k, id, i+1, bytes.NewReader(p), int64(len(p))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListParts(ctx, k, id)
	if err != nil || len(got) != 2 || got[0].Number != 1 || got[1].Size != int64(len(parts[1])) {
		t.Fatalf("resumed parts %+v %v", got, err)
	}
	last, err := s.UploadPart(ctx, k, id, 3, bytes.NewReader(parts[2]), int64(len(parts[2])))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.CompleteMultipart(ctx, k, id, append(got, last))
	if err != nil {
		t.Fatal(err)
	}
	whole := bytes.Join(parts, nil)
	if info.Size != int64(len(whole)) || sum(readAll(t, s, k)) != sum(whole) {
		t.Fatal("multipart object differs")
	}
	if _, err := s.ListParts(ctx, k, id); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("parts of a completed upload: %v", err)
	}
	id2, _ := s.NewMultipart(ctx, k, blob.PutOptions{})
	if err := s.AbortMultipart(ctx, k, id2); err != nil {
		t.Fatal(err)
	}
}

func TestStreamingWriter(t *testing.T) {
	s := open(t)
	k, _ := blob.SegmentVideo("writer", 1, 1, "mp4")
	data := random(t, 12<<20+777)
	w := s.NewWriter(context.Background(), k, blob.PutOptions{ContentType: "video/mp4"})
	for off := 0; off < len(data); off += 100_003 {
		if _, err := w.Write(data[off:min(off+100_003, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Info().SHA256 != sum(data) || sum(readAll(t, s, k)) != sum(data) {
		t.Fatal("streamed object differs")
	}

	// An aborted stream stores nothing.
	k2, _ := blob.SegmentVideo("writer", 2, 1, "mp4")
	w2 := s.NewWriter(context.Background(), k2, blob.PutOptions{})
	_, _ = w2.Write(random(t, 9<<20))
	w2.Abort(errors.New("encoder died"))
	if _, err := s.Stat(context.Background(), k2); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("aborted stream left an object: %v", err)
	}
}

func TestPresignedGet(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k, _ := blob.Final("presign")
	data := random(t, 4096)
	if _, err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data)), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignGet(ctx, k, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("presigned GET: %d, %d bytes", resp.StatusCode, len(got))
	}
}
