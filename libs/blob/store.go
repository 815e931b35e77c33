package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/spoolvideo/spool/libs/config"
)

// ErrNotFound is returned for a key or upload that does not exist.
var ErrNotFound = errors.New("object not found")

// Store is the bucket of the system.
type Store struct {
	client *minio.Client
	core   *minio.Core
	bucket string
	region string
	creds  *credentials.Credentials
	// transport is the HTTP transport of the client, nil for minio-go's.
	transport http.RoundTripper
	// partSize is the part size of Put and Writer uploads.
	partSize int64
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key         Key
	Size        int64     // bytes
	SHA256      string    // lowercase hex; set by Put, empty from Stat, Get and Open
	ETag        string    // without quotes
	ContentType string    // set by Stat, Get and Open
	ModTime     time.Time // set by Stat, Get and Open
}

// PutOptions tune Put.
type PutOptions struct {
	ContentType  string
	CacheControl string // e.g. "no-cache" for a playlist that changes
	// NoSHA256 skips the SHA-256 of the content (ObjectInfo.SHA256 is
	// then empty): for bytes that carry their own check, such as a tail
	// state's CRC, on a path where every millisecond counts.
	NoSHA256 bool
}

// New connects to the S3 endpoint of cfg. It does not touch the network;
// EnsureBucket does.
func New(cfg config.S3, opts ...Option) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, fmt.Errorf("blob: endpoint %q and bucket %q must both be set", cfg.Endpoint, cfg.Bucket)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey.Reveal(), "")
	mo := &minio.Options{
		Creds:     creds,
		Secure:    cfg.TLS,
		Region:    cfg.Region,
		Transport: o.transport,
	}
	core, err := minio.NewCore(cfg.Endpoint, mo)
	if err != nil {
		return nil, fmt.Errorf("blob: client for %s: %w", cfg.Endpoint, err)
	}
	return &Store{client: core.Client, core: core, bucket: cfg.Bucket, region: cfg.Region, creds: creds, transport: o.transport,
		partSize: o.partSize}, nil
}

// Bucket names the bucket.
func (s *Store) Bucket() string { return s.bucket }

// notInitialized is MinIO's answer while it starts (its object layer not
// ready yet, though it already serves HTTP): worth waiting for.
const notInitialized = "XMinioServerNotInitialized"

// EnsureBucket creates the bucket unless it exists; racing creators both
// succeed. A MinIO still starting up is waited for, up to 30 s.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	for wait, deadline := 50*time.Millisecond, time.Now().Add(30*time.Second); err != nil &&
		minio.ToErrorResponse(err).Code == notInitialized && time.Now().Before(deadline); wait = min(2*wait, time.Second) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("blob: bucket %s: %w", s.bucket, ctx.Err())
		case <-time.After(wait):
		}
		ok, err = s.client.BucketExists(ctx, s.bucket)
	}
	if err != nil {
		return fmt.Errorf("blob: bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	if err != nil {
		code := minio.ToErrorResponse(err).Code
		if code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("blob: make bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Put streams r (size bytes, or -1 when unknown) into key and returns its
// SHA-256, computed on the way. A reader that can also be read at offsets
// (a *bytes.Reader: everything already in memory) is hashed first and
// uploaded in parallel parts: a tail state of tens of megabytes, on a
// chain's critical path, goes out in about half the time.
func (s *Store) Put(ctx context.Context, key Key, r io.Reader, size int64, o PutOptions) (ObjectInfo, error) {
	opts := minio.PutObjectOptions{ContentType: o.ContentType, CacheControl: o.CacheControl, PartSize: uint64(s.partSize)}
	h := sha256.New()
	body := io.TeeReader(r, h)
	if o.NoSHA256 {
		body = r
	}
	if ra, ok := r.(inMemory); ok && size > s.partSize {
		start, err := ra.Seek(0, io.SeekCurrent)
		if err == nil && !o.NoSHA256 {
			_, err = io.Copy(h, io.NewSectionReader(ra, start, size))
		}
		if err != nil {
			return ObjectInfo{}, fmt.Errorf("blob: put %s: hash: %w", key, err)
		}
		body, opts.NumThreads = io.NewSectionReader(ra, start, size), parallelParts
	}
	info, err := s.client.PutObject(ctx, s.bucket, string(key), body, size, opts)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("blob: put %s: %w", key, err)
	}
	oi := ObjectInfo{Key: key, Size: info.Size, ETag: info.ETag}
	if !o.NoSHA256 {
		oi.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	return oi, nil
}

// inMemory is a reader whose bytes can be read at any offset, more than once.
type inMemory interface {
	io.ReaderAt
	io.Seeker
}

// parallelParts is how many parts of an in-memory Put go up at once.
const parallelParts = 4

// Get opens key for reading, in one GET: the info and the bytes are of the
// same version, and a read fails with ErrChanged rather than go on into
// another. A missing key is ErrNotFound.
func (s *Store) Get(ctx context.Context, key Key) (io.ReadCloser, ObjectInfo, error) {
	r, err := s.Open(ctx, key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	return r, r.Info(), nil
}

// Stat describes key. A missing key is ErrNotFound.
func (s *Store) Stat(ctx context.Context, key Key) (ObjectInfo, error) {
	st, err := s.client.StatObject(ctx, s.bucket, string(key), minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.wrap("stat", key, err)
	}
	return objectInfo(key, st), nil
}

// Delete removes key; deleting a missing key succeeds.
func (s *Store) Delete(ctx context.Context, key Key) error {
	if err := s.client.RemoveObject(ctx, s.bucket, string(key), minio.RemoveObjectOptions{}); err != nil {
		return s.wrap("delete", key, err)
	}
	return nil
}

// List returns the keys under prefix, in lexical order.
func (s *Store) List(ctx context.Context, prefix Key) ([]ObjectInfo, error) {
	var out []ObjectInfo
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: string(prefix), Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("blob: list %s: %w", prefix, o.Err)
		}
		out = append(out, ObjectInfo{Key: Key(o.Key), Size: o.Size, ETag: o.ETag})
	}
	return out, nil
}

// Copy copies src into dst inside the object store, without the bytes
// passing through this process, and of src's version etag only: a src
// replaced meanwhile is ErrChanged, a missing one ErrNotFound. Objects of
// any size are copied (over 5 GiB in parts).
func (s *Store) Copy(ctx context.Context, src, dst Key, etag string) (ObjectInfo, error) {
	info, err := s.client.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: string(dst)},
		minio.CopySrcOptions{Bucket: s.bucket, Object: string(src), MatchETag: etag})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "PreconditionFailed" {
			return ObjectInfo{}, fmt.Errorf("blob: copy %s version %s: %w", src, etag, ErrChanged)
		}
		return ObjectInfo{}, s.wrap("copy "+string(src)+" to", dst, err)
	}
	return ObjectInfo{Key: dst, Size: info.Size, ETag: info.ETag}, nil
}

func (s *Store) wrap(op string, key Key, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchUpload", "NoSuchBucket":
		return fmt.Errorf("blob: %s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("blob: %s %s: %w", op, key, err)
}
