package devstack

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secure-io/sio-go"
)

// decryptAdminBody is encryptAdminBody's inverse.
func decryptAdminBody(t *testing.T, password string, body []byte) []byte {
	t.Helper()
	if len(body) < adminSaltSize+1+8 || body[adminSaltSize] != adminPBKDF2AESGCM {
		t.Fatalf("%d bytes, algorithm %#x: want salt, 0x02, nonce, data", len(body), body[adminSaltSize])
	}
	salt, nonce := body[:adminSaltSize], body[adminSaltSize+1:adminSaltSize+1+8]
	key, err := pbkdf2.Key(sha256.New, password, salt, adminPBKDF2Rounds, 32)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := sio.AES_256_GCM.Stream(key)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(stream.DecryptReader(bytes.NewReader(body[adminSaltSize+1+8:]), nonce, nil))
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// An admin body is salt | 0x02 | nonce | stream, decrypts with the password
// (a large one in several sio fragments), and is fresh each time.
func TestEncryptAdminBody(t *testing.T) {
	for _, n := range []int{0, 60, 16<<10 + 1, 100 << 10} {
		data := bytes.Repeat([]byte("x"), n)
		a, err := encryptAdminBody("root secret", data)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := encryptAdminBody("root secret", data)
		if bytes.Equal(a, b) {
			t.Fatal("two encryptions are equal: salt and nonce must be random")
		}
		if got := decryptAdminBody(t, "root secret", a); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes came back as %d", n, len(got))
		}
	}
}

// TestServiceCannotAdministerMinIO: a service's user cannot create a user
// nor give itself another policy, and an unknown user cannot sign admin
// requests; the root user can.
func TestServiceCannotAdministerMinIO(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{MinIO: true, BuildMinIO: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	access, secret, err := s.S3User("worker")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	worker := &minioAdmin{endpoint: "http://" + s.S3Endpoint, access: access, secret: secret, client: client}
	for name, call := range map[string]func() error{
		"add a user":                 func() error { return worker.addUser(ctx, "intruder", "intruder-secret") },
		"give itself another policy": func() error { return worker.setUserPolicy(ctx, "spool-stitcher", access) },
		"replace its policy": func() error {
			return worker.addPolicy(ctx, "spool-worker", []byte(`{"Version":"2012-10-17","Statement":[]}`))
		},
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Errorf("the worker's user may %s: %v, want AccessDenied", name, err)
		} else {
			t.Logf("refused: worker: %s", name)
		}
	}
	stranger := &minioAdmin{endpoint: worker.endpoint, access: "stranger", secret: "stranger-secret", client: client}
	if err := stranger.addUser(ctx, "intruder", "intruder-secret"); err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
		t.Errorf("an unknown user may add a user: %v", err)
	}
	root := &minioAdmin{endpoint: worker.endpoint, access: S3AccessKey, secret: S3SecretKey, client: client}
	if err := root.addUser(ctx, "spool-extra", "spool-extra-secret"); err != nil {
		t.Fatalf("root: %v", err)
	}
}
