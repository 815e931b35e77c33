package blob

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
)

// Presigner signs URLs that reach objects of the bucket without
// credentials until they expire: a GET downloads, a PUT stores its body.
// Signing is offline: it sends no request.
type Presigner struct {
	client *minio.Client
	bucket string
}

// Presigner signs URLs for the endpoint the store itself reaches (config
// S3.Endpoint): for this process's own tools (ffprobe reading an
// upload), or for clients when they reach the same address.
func (s *Store) Presigner() *Presigner { return &Presigner{client: s.client, bucket: s.bucket} }

// defaultRegion is the region a public presigner signs for when the
// store's configuration names none: MinIO's and S3's default.
const defaultRegion = "us-east-1"

// PublicPresigner signs URLs for endpoint, "http://host[:port]" or
// "https://host[:port]" (no path, query or user): the address by which
// browsers and clients outside the cluster reach this same object store,
// e.g. https://media.example.com behind an ingress that passes the Host
// header on. It signs with the store's credentials, for its bucket and its
// region (us-east-1 when the configuration names none), which it never
// looks up: building it and signing with it send no request. A malformed
// endpoint wraps ErrInvalidOption.
func (s *Store) PublicPresigner(endpoint string) (*Presigner, error) {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		return nil, fmt.Errorf("blob: %w: public endpoint %q: %v", ErrInvalidOption, endpoint, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.User != nil, u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("blob: %w: public endpoint %q: want http:// or https:// then host[:port], nothing after", ErrInvalidOption, endpoint)
	}
	client, err := minio.New(u.Host, &minio.Options{Creds: s.creds, Secure: u.Scheme == "https", Region: cmp.Or(s.region, defaultRegion),
		Transport: s.transport})
	if err != nil {
		return nil, fmt.Errorf("blob: public endpoint %q: %w", endpoint, err)
	}
	return &Presigner{client: client, bucket: s.bucket}, nil
}

// PresignGet returns a URL that downloads key until expiry (1 s..7 days)
// passes.
func (p *Presigner) PresignGet(ctx context.Context, key Key, expiry time.Duration) (*url.URL, error) {
	u, err := p.client.PresignedGetObject(ctx, p.bucket, string(key), expiry, nil)
	if err != nil {
		return nil, fmt.Errorf("blob: presign %s: %w", key, err)
	}
	return u, nil
}

// PresignPut returns a URL that stores a request's body as key until
// expiry (1 s..7 days) passes. It cannot bound the body's size: the caller
// checks the object it finds.
func (p *Presigner) PresignPut(ctx context.Context, key Key, expiry time.Duration) (*url.URL, error) {
	u, err := p.client.PresignedPutObject(ctx, p.bucket, string(key), expiry)
	if err != nil {
		return nil, fmt.Errorf("blob: presign put %s: %w", key, err)
	}
	return u, nil
}

// PresignGet is s.Presigner().PresignGet: a URL for the store's own
// endpoint.
func (s *Store) PresignGet(ctx context.Context, key Key, expiry time.Duration) (*url.URL, error) {
	return s.Presigner().PresignGet(ctx, key, expiry)
}

// PresignPut is s.Presigner().PresignPut: a URL for the store's own
// endpoint.
func (s *Store) PresignPut(ctx context.Context, key Key, expiry time.Duration) (*url.URL, error) {
	return s.Presigner().PresignPut(ctx, key, expiry)
}
