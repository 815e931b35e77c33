package blob

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrInvalidOption is wrapped by every error about an Option given to New.
var ErrInvalidOption = errors.New("invalid blob option")

// MaxPartSize is S3's largest part.
const MaxPartSize = 5 << 30

// defaultPartSize is the part size of Put and Writer unless WithPartSize
// says otherwise; it bounds their memory, since minio-go buffers one part.
const defaultPartSize = 8 << 20

// Option tunes New. An option with a bad value makes New fail.
type Option func(*options) error

type options struct {
	partSize  int64
	transport http.RoundTripper
}

func defaultOptions() options {
	return options{partSize: defaultPartSize}
}

// WithPartSize sets the part size of Put and Writer uploads, between
// MinPartSize and MaxPartSize; a streaming upload holds one part in memory.
// The default is 8 MiB.
func WithPartSize(n int64) Option {
	return func(o *options) error {
		if n < MinPartSize || n > MaxPartSize {
			return fmt.Errorf("%w: part size %d: want %d..%d", ErrInvalidOption, n, MinPartSize, MaxPartSize)
		}
		o.partSize = n
		return nil
	}
}

// WithTransport sets the HTTP transport of the S3 client, for instance to
// trace requests; the default is minio-go's.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return fmt.Errorf("%w: nil transport", ErrInvalidOption)
		}
		o.transport = rt
		return nil
	}
}
