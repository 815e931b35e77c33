package blob

import (
	"context"
	"fmt"
	"io"
)

// Writer streams into an object: what is written goes through a pipe to a
// PutObject of unknown size, which buffers one part (8 MiB unless
// WithPartSize says otherwise) at a time.
type Writer struct {
	pw   *io.PipeWriter
	done chan struct{}
	info ObjectInfo
	err  error
}

// NewWriter starts a streaming upload to key. Close finishes it; a write
// error or ctx cancellation aborts it and nothing is stored.
func (s *Store) NewWriter(ctx context.Context, key Key, o PutOptions) *Writer {
	pr, pw := io.Pipe()
	w := &Writer{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.info, w.err = s.Put(ctx, key, pr, -1, o)
		pr.CloseWithError(w.err) // unblocks a writer if Put failed early
	}()
	return w
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.pw.Write(p)
	if err != nil {
		return n, fmt.Errorf("blob: stream: %w", err)
	}
	return n, nil
}

// Close ends the stream and waits for the upload; Info then describes the
// object.
func (w *Writer) Close() error {
	_ = w.pw.Close()
	<-w.done
	return w.err
}

// Abort stops the upload with err; nothing is stored.
func (w *Writer) Abort(err error) {
	_ = w.pw.CloseWithError(err)
	<-w.done
}

// Info describes the stored object after a successful Close.
func (w *Writer) Info() ObjectInfo { return w.info }
