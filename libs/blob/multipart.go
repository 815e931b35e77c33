package blob

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/minio/minio-go/v7"
)

// MinPartSize is S3's smallest part, except for the last one.
const MinPartSize = 5 << 20

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number int
	ETag   string
	Size   int64
}

// NewMultipart starts a multipart upload of key and returns its id. The
// caller records the id to resume after a crash.
func (s *Store) NewMultipart(ctx context.Context, key Key, o PutOptions) (string, error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, string(key), minio.PutObjectOptions{ContentType: o.ContentType})
	if err != nil {
		return "", fmt.Errorf("blob: start multipart %s: %w", key, err)
	}
	return id, nil
}

// UploadPart uploads part number n (from 1) of size bytes. Every part but
// the last must be at least MinPartSize. Uploading a number again replaces
// that part.
func (s *Store) UploadPart(ctx context.Context, key Key, uploadID string, n int, r io.Reader, size int64) (Part, error) {
	p, err := s.core.PutObjectPart(ctx, s.bucket, string(key), uploadID, n, r, size, minio.PutObjectPartOptions{})
	if err != nil {
		return Part{}, s.wrap(fmt.Sprintf("upload part %d of", n), key, err)
	}
	return Part{Number: p.PartNumber, ETag: p.ETag, Size: p.Size}, nil
}

// ListParts returns the parts uploaded so far, in order, to resume.
func (s *Store) ListParts(ctx context.Context, key Key, uploadID string) ([]Part, error) {
	var out []Part
	marker := 0
	for {
		res, err := s.core.ListObjectParts(ctx, s.bucket, string(key), uploadID, marker, 1000)
		if err != nil {
			return nil, s.wrap("list parts of", key, err)
		}
		for _, p := range res.ObjectParts {
			out = append(out, Part{Number: p.PartNumber, ETag: p.ETag, Size: p.Size})
		}
		if !res.IsTruncated {
			break
		}
		marker = res.NextPartNumberMarker
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// CompleteMultipart assembles parts, in any order, into the object.
func (s *Store) CompleteMultipart(ctx context.Context, key Key, uploadID string, parts []Part) (ObjectInfo, error) {
	if len(parts) == 0 {
		return ObjectInfo{}, fmt.Errorf("blob: complete multipart %s: no parts", key)
	}
	cp := make([]minio.CompletePart, len(parts))
	var size int64
	for i, p := range parts {
		cp[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
		size += p.Size
	}
	sort.Slice(cp, func(i, j int) bool { return cp[i].PartNumber < cp[j].PartNumber })
	info, err := s.core.CompleteMultipartUpload(ctx, s.bucket, string(key), uploadID, cp, minio.PutObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.wrap("complete multipart", key, err)
	}
	return ObjectInfo{Key: key, Size: size, ETag: info.ETag}, nil
}

// AbortMultipart discards the upload and its parts.
func (s *Store) AbortMultipart(ctx context.Context, key Key, uploadID string) error {
	if err := s.core.AbortMultipartUpload(ctx, s.bucket, string(key), uploadID); err != nil {
		return s.wrap("abort multipart", key, err)
	}
	return nil
}

// IncompleteUploads returns the ids of key's multipart uploads that were
// started and neither completed nor aborted. (MinIO lists them by exact
// key only.)
func (s *Store) IncompleteUploads(ctx context.Context, key Key) ([]string, error) {
	var out []string
	for u := range s.client.ListIncompleteUploads(ctx, s.bucket, string(key), false) {
		if u.Err != nil {
			return nil, s.wrap("list incomplete uploads of", key, u.Err)
		}
		if u.Key == string(key) {
			out = append(out, u.UploadID)
		}
	}
	return out, nil
}
