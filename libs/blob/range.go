package blob

import (
	"context"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// ReadRange reads bytes [off, off+n) of key with one ranged GET: exactly n
// bytes, or an error wrapping io.ErrUnexpectedEOF when the object ends
// before off+n. n = 0 reads nothing and sends no request. A missing key is
// ErrNotFound. It is how a worker reads its segment's audio samples and
// reference frames, and the stitcher a piece's AAC packets, without the
// whole object.
func (s *Store) ReadRange(ctx context.Context, key Key, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("blob: read %s: range of %d bytes at %d: want both ≥ 0", key, n, off)
	}
	if n == 0 {
		return nil, nil
	}
	o := minio.GetObjectOptions{}
	if err := o.SetRange(off, off+n-1); err != nil {
		return nil, fmt.Errorf("blob: read %s: %w", key, err)
	}
	body, _, _, err := s.core.GetObject(ctx, s.bucket, string(key), o)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			return nil, fmt.Errorf("blob: read %s: bytes [%d, %d): %w", key, off, off+n, io.ErrUnexpectedEOF)
		}
		return nil, s.wrap("get", key, err)
	}
	defer body.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(body, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("blob: read %s: bytes [%d, %d): %w", key, off, off+n, err)
	}
	return buf, nil
}
