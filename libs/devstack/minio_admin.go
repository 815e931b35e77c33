package devstack

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/secure-io/sio-go"
)

// minioAdmin calls the operations of MinIO's admin API (the one `mc admin`
// speaks) that setting up users needs: wait for the IAM subsystem, add a
// canned policy, add or update a user, attach a policy to a user. It is written against the
// API rather than with madmin-go, whose AGPL licence would extend to every
// binary that links devstack. Requests are signed with Signature V4 by the
// root credentials; the body that carries a user's secret key is encrypted
// with the root secret key, as the API demands (encryptAdminBody).
type minioAdmin struct {
	endpoint string // http://host:port
	access   string
	secret   string
	client   *http.Client
}

// adminPrefix is the admin API's path, at the version the pinned server
// speaks.
const adminPrefix = "/minio/admin/v3/"

// adminRegion is the region admin requests are signed for: MinIO's default.
const adminRegion = "us-east-1"

// adminWait bounds how long a call waits out a server whose IAM subsystem
// is still starting (it serves HTTP, and says it is ready, a little before).
const adminWait = 30 * time.Second

// waitIAM waits until the server has loaded its users and policies. An
// IAM change made before then may be lost: the first load replaces what
// the server holds in memory, whatever was added meanwhile. Listing the
// users is the call that waits for that load.
func (a *minioAdmin) waitIAM(ctx context.Context) error {
	return a.call(ctx, http.MethodGet, "list-users", url.Values{}, nil)
}

// addPolicy creates or replaces the canned policy name with doc, an IAM
// policy document (JSON).
func (a *minioAdmin) addPolicy(ctx context.Context, name string, doc []byte) error {
	return a.call(ctx, http.MethodPut, "add-canned-policy", url.Values{"name": {name}}, doc)
}

// addUser creates the user accessKey, enabled, with secretKey, or sets an
// existing one's secret key.
func (a *minioAdmin) addUser(ctx context.Context, accessKey, secretKey string) error {
	plain, err := json.Marshal(struct {
		SecretKey string `json:"secretKey"`
		Status    string `json:"status"`
	}{secretKey, "enabled"})
	if err != nil {
		return err
	}
	body, err := encryptAdminBody(a.secret, plain)
	if err != nil {
		return fmt.Errorf("add user %s: %w", accessKey, err)
	}
	return a.call(ctx, http.MethodPut, "add-user", url.Values{"accessKey": {accessKey}}, body)
}

// setUserPolicy makes policy the one policy of user accessKey.
func (a *minioAdmin) setUserPolicy(ctx context.Context, policy, accessKey string) error {
	return a.call(ctx, http.MethodPut, "set-user-or-group-policy", url.Values{"policyName": {policy}, "userOrGroup": {accessKey}, "isGroup": {"false"}}, nil)
}

// adminError is the JSON body of a refused admin request.
type adminError struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// call sends body to the admin operation op with method and query, signed,
// and wants 200; the answer's body is dropped. A server still initialising
// is waited for, up to adminWait.
func (a *minioAdmin) call(ctx context.Context, method, op string, query url.Values, body []byte) error {
	deadline := time.Now().Add(adminWait)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		status, ae, err := a.do(ctx, method, op, query, body)
		switch {
		case err != nil:
			return fmt.Errorf("minio admin %s: %w", op, err)
		case status == http.StatusOK:
			return nil
		case status != http.StatusServiceUnavailable || time.Now().After(deadline):
			return fmt.Errorf("minio admin %s: %d %s: %s", op, status, ae.Code, ae.Message)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("minio admin %s: %w", op, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// do sends one signed request and returns its status and, when refused,
// its error body.
func (a *minioAdmin) do(ctx context.Context, method, op string, query url.Values, body []byte) (int, adminError, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.endpoint+adminPrefix+op+"?"+query.Encode(), bytes.NewReader(body))
	if err != nil {
		return 0, adminError{}, err
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req = signer.SignV4(*req, a.access, a.secret, "", adminRegion)
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, adminError{}, err
	}
	defer resp.Body.Close()
	var ae adminError
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
	} else {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if json.Unmarshal(raw, &ae) != nil || ae.Code == "" {
			ae = adminError{Code: "unknown", Message: string(raw)}
		}
	}
	return resp.StatusCode, ae, nil
}

// Parameters of the admin API's encrypted bodies: the server derives the
// key from its caller's secret key by the algorithm the id byte names;
// 0x02 is PBKDF2-SHA256 (8192 rounds, a 32-byte salt) with AES-256-GCM,
// the one every server accepts, FIPS mode or not.
const (
	adminPBKDF2AESGCM = 0x02
	adminPBKDF2Rounds = 8192
	adminSaltSize     = 32
)

// encryptAdminBody encrypts data for the admin API with a key derived from
// password: salt (32 bytes) | algorithm id (1) | nonce (8) | the sio-go
// stream (AES-256-GCM in 16 KiB fragments) of data.
func encryptAdminBody(password string, data []byte) ([]byte, error) {
	salt := make([]byte, adminSaltSize)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	key, err := pbkdf2.Key(sha256.New, password, salt, adminPBKDF2Rounds, 32)
	if err != nil {
		return nil, err
	}
	stream, err := sio.AES_256_GCM.Stream(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, stream.NonceSize())
	_, _ = rand.Read(nonce)
	var out bytes.Buffer
	out.Write(salt)
	out.WriteByte(adminPBKDF2AESGCM)
	out.Write(nonce)
	w := stream.EncryptWriter(&out, nonce, nil)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
