package worker

import (
	"bytes"
	"context"
	"slices"

	"github.com/spoolvideo/spool/libs/media"
)

// warmEncoder is an ffmpeg encoder a slot starts ahead, with its last
// segment's parameters, so that the next segment (usually of the same job)
// does not wait for a process to start: on a chain's critical path every
// millisecond between two segments counts. A mismatch starts a new one.
type warmEncoder struct {
	opts media.EncodeOptions
	enc  *media.Encoder
	out  *bytes.Buffer
	err  error
	done chan struct{}
}

// warmUp starts an encoder for opts in the background.
func warmUp(ctx context.Context, opts media.EncodeOptions) *warmEncoder {
	we := &warmEncoder{opts: opts, out: &bytes.Buffer{}, done: make(chan struct{})}
	go func() {
		defer close(we.done)
		we.enc, we.err = media.NewEncoder(ctx, we.out, opts)
	}()
	return we
}

func sameOptions(a, b media.EncodeOptions) bool {
	return a.Width == b.Width && a.Height == b.Height && a.FPS == b.FPS && a.Codec == b.Codec && slices.Equal(a.Keyframes, b.Keyframes)
}

// take returns the slot's warm encoder if it matches opts, else a new one;
// an unmatched warm encoder is stopped.
func (s *slot) takeEncoder(ctx context.Context, opts media.EncodeOptions) (*media.Encoder, *bytes.Buffer, error) {
	if we := s.warm; we != nil {
		s.warm = nil
		<-we.done
		if we.err == nil && sameOptions(we.opts, opts) {
			return we.enc, we.out, nil
		}
		if we.enc != nil {
			_ = we.enc.Close() // no frame: it fails, and is gone
		}
	}
	out := &bytes.Buffer{}
	enc, err := media.NewEncoder(ctx, out, opts)
	return enc, out, err
}

// dropWarm stops the slot's warm encoder, if any.
func (s *slot) dropWarm() {
	if we := s.warm; we != nil {
		s.warm = nil
		<-we.done
		if we.enc != nil {
			_ = we.enc.Close()
		}
	}
}
