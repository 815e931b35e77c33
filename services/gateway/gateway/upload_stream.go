package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
)

// errTooLarge is returned by streamTo for a body longer than its limit.
var errTooLarge = errors.New("larger than allowed")

// streamed is what streamTo stored.
type streamed struct {
	Bytes  int64
	SHA256 string // hex
}

// readError is a failure to read what is being stored (the client's body,
// or the object copied), rather than to store it.
type readError struct {
	at  int64
	err error
}

func (e *readError) Error() string {
	return fmt.Sprintf("the upload broke off after %d bytes: %v", e.at, e.err)
}
func (e *readError) Unwrap() error { return e.err }

type partResult struct {
	part blob.Part
	err  error
}

// partPool keeps the part buffers of finished uploads for the next ones,
// so that uploads one after another do not leave a heap of garbage parts.
type partPool struct {
	size int64
	pool sync.Pool // of *[]byte of size bytes
}

func (p *partPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, p.size)
	return &b
}

func (p *partPool) put(b *[]byte) { p.pool.Put(b) }

// streamTo stores r as key through a multipart upload with bounded memory:
// the next part is read (and hashed) while the one before it goes up, so
// an upload holds two of parts' buffers. It returns errTooLarge as soon as
// r passes limit bytes. Any failure aborts the multipart upload, so that
// nothing is left of it. An empty r stores nothing and returns Bytes 0.
func streamTo(ctx context.Context, bl *blob.Store, key blob.Key, r io.Reader, limit int64, parts *partPool, contentType string) (streamed, error) {
	h := sha256.New()
	body := io.LimitReader(r, limit+1)
	var bufs [2]*[]byte
	defer func() {
		for _, b := range bufs {
			if b != nil {
				parts.put(b)
			}
		}
	}()
	var (
		n        int64
		uploadID string
		done     []blob.Part
		inflight chan partResult // the part going up, nil when none
		err      error
	)
	wait := func() error {
		res := <-inflight
		inflight = nil
		if res.err == nil {
			done = append(done, res.part)
		}
		return res.err
	}
	for number := 1; ; number++ {
		if bufs[number%2] == nil {
			bufs[number%2] = parts.get()
		}
		b := *bufs[number%2]
		k, rerr := io.ReadFull(body, b)
		n += int64(k)
		h.Write(b[:k])
		eof := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if n > limit {
			err = errTooLarge
			break
		}
		if rerr != nil && !eof {
			err = &readError{n, rerr}
			break
		}
		if inflight != nil {
			if err = wait(); err != nil {
				break
			}
		}
		if k == 0 {
			if number == 1 {
				return streamed{}, nil
			}
			break
		}
		if uploadID == "" {
			if uploadID, err = bl.NewMultipart(ctx, key, blob.PutOptions{ContentType: contentType}); err != nil {
				break
			}
		}
		inflight = make(chan partResult, 1)
		go func(ch chan<- partResult, number int, data []byte) {
			p, err := bl.UploadPart(ctx, key, uploadID, number, bytes.NewReader(data), int64(len(data)))
			ch <- partResult{p, err}
		}(inflight, number, b[:k])
		if eof {
			break
		}
	}
	if inflight != nil {
		if werr := wait(); err == nil {
			err = werr
		}
	}
	if err == nil {
		_, err = bl.CompleteMultipart(ctx, key, uploadID, done)
	}
	if err != nil {
		if uploadID != "" {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = bl.AbortMultipart(actx, key, uploadID)
		}
		return streamed{}, err
	}
	return streamed{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
