package blob

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// ErrChanged is returned by a Reader whose object was overwritten or
// removed while it was being read: a Reader never mixes the bytes of two
// versions. Reading the key again reads its new version.
var ErrChanged = errors.New("object changed while read")

// maxResumes bounds how often a Reader re-opens a stream that broke off
// before the object's end.
const maxResumes = 2

// maxSkip is how far ahead (bytes) a Seek may land and still be read from
// the open stream, skipping what lies between, rather than by a new GET.
const maxSkip = 1 << 20

// Reader reads one version of an object: the one its Open found. Its
// first bytes come from the very GET that gave Info, so a small object is
// read in one request, and so is a range that starts at most maxSkip bytes
// after where the stream is. A Seek further or back, or a stream that
// breaks off, re-opens the object at the offset under an If-Match on the
// version's ETag, so that a
// later version makes Read fail with ErrChanged instead of supplying its
// bytes. It reads under the context given to Open. It is not safe for
// concurrent use.
type Reader struct {
	s       *Store
	ctx     context.Context
	info    ObjectInfo
	body    io.ReadCloser // the open stream, nil when none
	at      int64         // the offset of body's next byte
	pos     int64         // the offset of the next Read
	resumes int
	err     error // sticky: a failed re-open
}

// Open starts reading key with one GET. A missing key is ErrNotFound.
// Info describes the version read: its size in bytes, ETag, content type
// and modification time. Close the Reader.
func (s *Store) Open(ctx context.Context, key Key) (*Reader, error) {
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, string(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return &Reader{s: s, ctx: ctx, info: objectInfo(key, oi), body: body}, nil
}

// Info describes the version the Reader reads.
func (r *Reader) Info() ObjectInfo { return r.info }

// Read implements io.Reader. It returns ErrChanged (wrapped) once the
// version it reads is gone, and io.ErrUnexpectedEOF when the stream keeps
// breaking off.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.pos >= r.info.Size {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if r.body != nil && r.pos > r.at && r.pos-r.at <= maxSkip {
			n, err := io.CopyN(io.Discard, r.body, r.pos-r.at)
			if r.at += n; err != nil {
				r.drop()
			}
		}
		if r.body == nil || r.at != r.pos {
			if err := r.reopen(); err != nil {
				r.err = err
				return 0, err
			}
		}
		if left := r.info.Size - r.pos; int64(len(p)) > left {
			p = p[:left]
		}
		n, err := r.body.Read(p)
		r.pos += int64(n)
		r.at += int64(n)
		if err == nil || (err == io.EOF && r.pos == r.info.Size) {
			return n, nil
		}
		// The stream ended or broke before the object's end: resume.
		r.drop()
		if r.resumes++; r.resumes > maxResumes {
			r.err = fmt.Errorf("blob: read %s at %d of %d bytes: %w", r.info.Key, r.pos, r.info.Size, io.ErrUnexpectedEOF)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// reopen GETs the rest of the version from r.pos.
func (r *Reader) reopen() error {
	r.drop()
	o := minio.GetObjectOptions{}
	if err := o.SetMatchETag(r.info.ETag); err != nil {
		return fmt.Errorf("blob: read %s: %w", r.info.Key, err)
	}
	if err := o.SetRange(r.pos, 0); err != nil {
		return fmt.Errorf("blob: read %s: %w", r.info.Key, err)
	}
	body, _, _, err := r.s.core.GetObject(r.ctx, r.s.bucket, string(r.info.Key), o)
	if err != nil {
		switch minio.ToErrorResponse(err).Code {
		case "PreconditionFailed", "NoSuchKey":
			return fmt.Errorf("blob: read %s: version %s: %w", r.info.Key, r.info.ETag, ErrChanged)
		}
		return fmt.Errorf("blob: read %s: %w", r.info.Key, err)
	}
	r.body, r.at = body, r.pos
	return nil
}

// Seek implements io.Seeker. It does no I/O: the next Read goes on at the
// new offset.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.info.Size
	default:
		return r.pos, fmt.Errorf("blob: seek %s: whence %d: want io.SeekStart, io.SeekCurrent or io.SeekEnd", r.info.Key, whence)
	}
	if offset < 0 {
		return r.pos, fmt.Errorf("blob: seek %s: offset %d: want ≥ 0", r.info.Key, offset)
	}
	r.pos = offset
	return offset, nil
}

// Close ends the stream.
func (r *Reader) Close() error {
	r.drop()
	return nil
}

func (r *Reader) drop() {
	if r.body != nil {
		_ = r.body.Close()
		r.body = nil
	}
}

func objectInfo(key Key, oi minio.ObjectInfo) ObjectInfo {
	return ObjectInfo{Key: key, Size: oi.Size, ETag: oi.ETag, ContentType: oi.ContentType, ModTime: oi.LastModified}
}
