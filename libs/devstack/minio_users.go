package devstack

import (
	"context"
	"crypto/rand"
	"embed"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/config"
)

// Least privilege in storage: each service reaches MinIO as a user of its
// own, whose one policy allows only the actions on the keys (libs/blob's
// layout) that the service's code performs. The policies are the files of
// deploy/minio, which production applies with `mc admin`; minio-policies
// holds the same bytes for embedding (a test keeps the two equal).

//go:embed minio-policies/*.json
var s3Policies embed.FS

// S3Services are the services that have a MinIO user of their own, each
// with the policy deploy/minio/<service>.json.
var S3Services = []string{"dispatcher", "gateway", "stitcher", "worker"}

// s3UserPrefix starts the access key, and the policy's name, of every
// service's user: "spool-worker".
const s3UserPrefix = "spool-"

// s3User is one service's credentials.
type s3User struct{ access, secret string }

// s3Users are the services' users, by service. The stack makes them once,
// with secret keys from crypto/rand, and gives them to every MinIO it
// starts or restarts, so that they outlive a restart, or a wipe, of its data.
type s3Users map[string]s3User

func newS3Users() s3Users {
	u := make(s3Users, len(S3Services))
	for _, svc := range S3Services {
		u[svc] = s3User{access: s3UserPrefix + svc, secret: rand.Text()} // 26 characters, 130 bits
	}
	return u
}

// S3Policy returns the policy document (IAM JSON, for the bucket
// S3Bucket) of service, one of S3Services: the bytes of
// deploy/minio/<service>.json.
func S3Policy(service string) ([]byte, error) {
	if !slices.Contains(S3Services, service) {
		return nil, unknownService(service)
	}
	doc, err := s3Policies.ReadFile("minio-policies/" + service + ".json")
	if err != nil {
		return nil, fmt.Errorf("devstack: policy of %s: %w", service, err)
	}
	return doc, nil
}

func unknownService(service string) error {
	return fmt.Errorf("devstack: no S3 user for service %q: want one of %s", service, strings.Join(S3Services, ", "))
}

// S3User returns the access and secret key of service's own MinIO user
// (service is one of S3Services), whose policy allows what that service
// does and nothing else. The keys stay the same for the stack's life,
// across restarts of MinIO. It is an error before the stack has run MinIO.
// The root user (S3AccessKey, S3SecretKey) is for admin tools and tests.
func (s *Stack) S3User(service string) (accessKey, secretKey string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s3users == nil {
		return "", "", fmt.Errorf("devstack: S3 user of %s: the stack has not run MinIO", service)
	}
	u, ok := s.s3users[service]
	if !ok {
		return "", "", unknownService(service)
	}
	return u.access, u.secret, nil
}

// S3UserConfig is S3Config with the credentials of service's own user
// (S3User).
func (s *Stack) S3UserConfig(service string) (config.S3, error) {
	access, secret, err := s.S3User(service)
	if err != nil {
		return config.S3{}, err
	}
	c := s.S3Config()
	c.AccessKey, c.SecretKey = access, config.Secret(secret)
	return c, nil
}

// provisionMinIO sets up the MinIO at endpoint (host:port) as root: the
// bucket, and for each service its policy and its user with that policy.
// Each step creates or replaces, so running it again (a restart, a data
// directory kept from an earlier stack) is harmless.
func provisionMinIO(ctx context.Context, endpoint string, users s3Users) error {
	root, err := blob.New(config.S3{Endpoint: endpoint, AccessKey: S3AccessKey, SecretKey: config.Secret(S3SecretKey), Bucket: S3Bucket})
	if err != nil {
		return fmt.Errorf("minio: %w", err)
	}
	if err := root.EnsureBucket(ctx); err != nil {
		return fmt.Errorf("minio: %w", err)
	}
	admin := &minioAdmin{endpoint: "http://" + endpoint, access: S3AccessKey, secret: S3SecretKey, client: &http.Client{Timeout: 10 * time.Second}}
	if err := admin.waitIAM(ctx); err != nil {
		return fmt.Errorf("minio: %w", err)
	}
	for _, svc := range S3Services {
		doc, err := S3Policy(svc)
		if err != nil {
			return err
		}
		u := users[svc]
		if err := admin.addPolicy(ctx, u.access, doc); err != nil {
			return fmt.Errorf("minio: user of %s: %w", svc, err)
		}
		if err := admin.addUser(ctx, u.access, u.secret); err != nil {
			return fmt.Errorf("minio: user of %s: %w", svc, err)
		}
		if err := admin.setUserPolicy(ctx, u.access, u.access); err != nil {
			return fmt.Errorf("minio: user of %s: %w", svc, err)
		}
	}
	return nil
}
