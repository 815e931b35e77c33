package blob_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/config"
)

func TestNewOptions(t *testing.T) {
	cfg := config.S3{Endpoint: "127.0.0.1:9", AccessKey: "a", SecretKey: "b", Bucket: "spool", Region: "us-east-1"}
	cases := []struct {
		name    string
		cfg     config.S3
		opts    []blob.Option
		wantErr error // nil: success; errAny: some error
	}{
		{"defaults", cfg, nil, nil},
		{"min part", cfg, []blob.Option{blob.WithPartSize(blob.MinPartSize)}, nil},
		{"max part", cfg, []blob.Option{blob.WithPartSize(blob.MaxPartSize)}, nil},
		{"transport", cfg, []blob.Option{blob.WithTransport(http.DefaultTransport)}, nil},
		{"part too small", cfg, []blob.Option{blob.WithPartSize(blob.MinPartSize - 1)}, blob.ErrInvalidOption},
		{"part too big", cfg, []blob.Option{blob.WithPartSize(blob.MaxPartSize + 1)}, blob.ErrInvalidOption},
		{"negative part", cfg, []blob.Option{blob.WithPartSize(-1)}, blob.ErrInvalidOption},
		{"nil transport", cfg, []blob.Option{blob.WithTransport(nil)}, blob.ErrInvalidOption},
		{"no endpoint", config.S3{Bucket: "spool"}, nil, errAny},
		{"no bucket", config.S3{Endpoint: "127.0.0.1:9"}, nil, errAny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := blob.New(c.cfg, c.opts...)
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("New: %v", err)
			case c.wantErr == nil && s.Bucket() != c.cfg.Bucket:
				t.Fatalf("bucket %q, want %q", s.Bucket(), c.cfg.Bucket)
			case c.wantErr == errAny && err == nil:
				t.Fatal("New succeeded, want an error")
			case c.wantErr != nil && c.wantErr != errAny && !errors.Is(err, c.wantErr):
				t.Fatalf("New: %v, want %v", err, c.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")
