package blob

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7"
)

// deleteBatch is the most keys one DeleteObjects request removes (the S3
// limit).
const deleteBatch = 1000

// DeletePrefix removes every object under prefix, a folder ("jobs/<job>/",
// "uploads/<tenant>/<upload>/": it must end with '/'), listing and
// removing them a batch at a time, and aborts the multipart uploads still
// open under it: those S3 lists under the prefix, and those of the keys in
// multipart, since some servers (MinIO) list open uploads by exact key
// only. It returns the objects removed. It is idempotent: what is
// already gone counts for nothing, and a prefix with no objects removes
// none. A context that ends between batches stops it with the count so
// far and the context's error; what is left is removed by the next call.
func (s *Store) DeletePrefix(ctx context.Context, prefix Key, multipart ...Key) (int, error) {
	if p := string(prefix); p == "" || !strings.HasSuffix(p, "/") || strings.Count(p, "/") < 2 {
		return 0, fmt.Errorf("%w: delete prefix %q: want a folder of the bucket such as jobs/<job>/", ErrInvalidKey, clip(p))
	}
	for _, k := range multipart {
		if !strings.HasPrefix(string(k), string(prefix)) {
			return 0, fmt.Errorf("%w: delete %s: %q is not under it", ErrInvalidKey, prefix, clip(string(k)))
		}
	}
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	removed := 0
	batch := make([]minio.ObjectInfo, 0, deleteBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := s.removeObjects(ctx, batch)
		removed += n
		batch = batch[:0]
		return err
	}
	for o := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: string(prefix), Recursive: true}) {
		if o.Err != nil {
			if ctx.Err() != nil {
				return removed, fmt.Errorf("blob: delete %s: %w", prefix, ctx.Err())
			}
			return removed, fmt.Errorf("blob: delete %s: list: %w", prefix, o.Err)
		}
		if batch = append(batch, minio.ObjectInfo{Key: o.Key}); len(batch) == deleteBatch {
			if err := flush(); err != nil {
				return removed, fmt.Errorf("blob: delete %s: %w", prefix, err)
			}
		}
	}
	if err := flush(); err != nil {
		return removed, fmt.Errorf("blob: delete %s: %w", prefix, err)
	}
	if err := ctx.Err(); err != nil { // a listing cut short ends without an error
		return removed, fmt.Errorf("blob: delete %s: %w", prefix, err)
	}
	for _, p := range append([]Key{prefix}, multipart...) {
		if err := s.abortUploads(ctx, p); err != nil {
			return removed, fmt.Errorf("blob: delete %s: %w", prefix, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return removed, fmt.Errorf("blob: delete %s: %w", prefix, err)
	}
	return removed, nil
}

// abortUploads aborts the multipart uploads open under prefix.
func (s *Store) abortUploads(ctx context.Context, prefix Key) error {
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	for u := range s.client.ListIncompleteUploads(lctx, s.bucket, string(prefix), true) {
		if u.Err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("list uploads under %s: %w", prefix, u.Err)
		}
		if err := s.AbortMultipart(ctx, Key(u.Key), u.UploadID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return ctx.Err()
}

// removeObjects removes one batch of keys in one request and returns how
// many went; a key that was already gone counts as removed.
func (s *Store) removeObjects(ctx context.Context, batch []minio.ObjectInfo) (int, error) {
	ch := make(chan minio.ObjectInfo, len(batch))
	for _, o := range batch {
		ch <- o
	}
	close(ch)
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.bucket, ch, minio.RemoveObjectsOptions{}) {
		if code := minio.ToErrorResponse(e.Err).Code; code == "NoSuchKey" {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %w", e.ObjectName, e.Err))
	}
	if len(errs) > 0 {
		return len(batch) - len(errs), fmt.Errorf("remove %d of %d objects: %w", len(errs), len(batch), errors.Join(errs[:min(len(errs), 3)]...))
	}
	return len(batch), nil
}
