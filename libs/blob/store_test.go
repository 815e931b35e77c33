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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

// open returns a Store on the real MinIO of the test stack, bucket ensured.
func open(t *testing.T, opts ...blob.Option) *blob.Store {
	t.Helper()
	return openBucket(t, "", opts...)
}

// openBucket is open on bucket, or on the stack's bucket when it is empty.
func openBucket(t *testing.T, bucket string, opts ...blob.Option) *blob.Store {
	t.Helper()
	st := devstacktest.Require(t, devstacktest.MinIO)
	if bucket == "" {
		bucket = st.S3Bucket
	}
	s, err := blob.New(config.S3{Endpoint: st.S3Endpoint, AccessKey: st.S3AccessKey,
		SecretKey: config.Secret(st.S3SecretKey), Bucket: bucket, Region: "us-east-1"}, opts...)
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

// TestEnsureBucket creates a bucket that does not exist yet from racing
// callers, then ensures it twice more.
func TestEnsureBucket(t *testing.T) {
	st := devstacktest.Require(t, devstacktest.MinIO)
	s, err := blob.New(config.S3{Endpoint: st.S3Endpoint, AccessKey: st.S3AccessKey,
		SecretKey: config.Secret(st.S3SecretKey), Bucket: "blob-ensure-" + strconv.FormatInt(time.Now().UnixNano(), 36), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.EnsureBucket(ctx) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("racing creator: %v", err)
		}
	}
	for i := range 2 {
		if err := s.EnsureBucket(ctx); err != nil {
			t.Fatalf("ensure %d: %v", i, err)
		}
	}
	k, _ := blob.Final("ensure")
	if _, err := s.Put(ctx, k, strings.NewReader("x"), 1, blob.PutOptions{}); err != nil {
		t.Fatalf("put into the new bucket: %v", err)
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

// TestPutSHA256 checks the digest Put computes on the way, for a single
// PUT, a multipart PUT of known size and one of unknown size.
func TestPutSHA256(t *testing.T) {
	s := open(t, blob.WithPartSize(blob.MinPartSize))
	ctx := context.Background()
	cases := []struct {
		name string
		n    int
		size func(n int) int64
	}{
		{"empty", 0, func(n int) int64 { return int64(n) }},
		{"single", 1 << 20, func(n int) int64 { return int64(n) }},
		{"multipart", 12<<20 + 5, func(n int) int64 { return int64(n) }},
		{"unknown-size", 11<<20 + 3, func(int) int64 { return -1 }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, _ := blob.SegmentVideo("sha", uint32(i), 1, "m4s")
			data := random(t, c.n)
			// A reader that is neither a Seeker nor a ReaderAt, as from a pipe.
			r := struct{ io.Reader }{bytes.NewReader(data)}
			info, err := s.Put(ctx, k, r, c.size(c.n), blob.PutOptions{ContentType: "video/iso.segment"})
			if err != nil {
				t.Fatal(err)
			}
			if info.SHA256 != sum(data) || info.Size != int64(len(data)) || info.Key != k {
				t.Fatalf("put reported %+v, want sha256 %s size %d", info, sum(data), len(data))
			}
			if got := readAll(t, s, k); sum(got) != sum(data) {
				t.Fatal("stored object differs")
			}
		})
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
	// Parts in any order: Complete sorts them.
	info, err := s.CompleteMultipart(ctx, k, id, []blob.Part{last, got[1], got[0]})
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
	if ids, err := s.IncompleteUploads(ctx, k); err != nil || len(ids) != 1 || ids[0] != id2 {
		t.Fatalf("incomplete uploads %v %v, want %s", ids, err, id2)
	}
	if err := s.AbortMultipart(ctx, k, id2); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.IncompleteUploads(ctx, k); err != nil || len(ids) != 0 {
		t.Fatalf("incomplete uploads after the abort %v %v", ids, err)
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

// TestPresignedPut: a presigned URL stores a PUT's body without
// credentials.
func TestPresignedPut(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	k, _ := blob.UploadIncoming("acme", blob.NewUploadID())
	data := random(t, 4096)
	u, err := s.PresignPut(ctx, k, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %s", resp.Status)
	}
	if info, err := s.Stat(ctx, k); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("stored %+v %v", info, err)
	}
}

// TestCopy: a copy is of the version asked for, or fails.
func TestCopy(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	src, dst := blob.Key("copy/src"), blob.Key("copy/dst")
	data := random(t, 6<<20+3)
	info, err := s.Put(ctx, src, bytes.NewReader(data), int64(len(data)), blob.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stat(ctx, src)
	if got, err := s.Copy(ctx, src, dst, st.ETag); err != nil || got.Size != int64(len(data)) || sum(readAll(t, s, dst)) != info.SHA256 {
		t.Fatalf("copy %+v %v", got, err)
	}
	if _, err := s.Put(ctx, src, bytes.NewReader(data[:100]), 100, blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(ctx, src, "copy/other", st.ETag); !errors.Is(err, blob.ErrChanged) {
		t.Fatalf("copy of a replaced version: %v", err)
	}
	if _, err := s.Copy(ctx, "copy/none", "copy/other", ""); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("copy of nothing: %v", err)
	}
}

// TestPutInMemoryInParallelParts: a *bytes.Reader larger than a part goes
// up in parallel parts, from where the reader stands, with the SHA-256 of
// exactly the bytes stored.
func TestPutInMemoryInParallelParts(t *testing.T) {
	s := open(t, blob.WithPartSize(blob.MinPartSize))
	ctx := context.Background()
	data := random(t, 3*int(blob.MinPartSize)+12345)
	r := bytes.NewReader(append([]byte("skipped"), data...))
	if _, err := r.Seek(int64(len("skipped")), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	info, err := s.Put(ctx, "parallel/put.bin", r, int64(len(data)), blob.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.SHA256 != sum(data) {
		t.Fatalf("put %d bytes, sha256 %s; want %d, %s", info.Size, info.SHA256, len(data), sum(data))
	}
	rc, _, err := s.Get(ctx, "parallel/put.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want the %d put", len(got), err, len(data))
	}
}

// TestPutNoSHA256 stores the bytes and reports no SHA-256.
func TestPutNoSHA256(t *testing.T) {
	s := open(t, blob.WithPartSize(blob.MinPartSize))
	ctx := context.Background()
	for _, n := range []int{1000, 2*int(blob.MinPartSize) + 7} {
		data := random(t, n)
		info, err := s.Put(ctx, "nosha/put.bin", bytes.NewReader(data), int64(n), blob.PutOptions{NoSHA256: true})
		if err != nil || info.SHA256 != "" || info.Size != int64(n) {
			t.Fatalf("%d bytes: %+v, %v", n, info, err)
		}
		if st, err := s.Stat(ctx, "nosha/put.bin"); err != nil || st.Size != int64(n) {
			t.Fatalf("%d bytes: stored %+v, %v", n, st, err)
		}
	}
}
