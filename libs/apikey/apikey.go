// Package apikey is the form of the gateway's API keys: minting, parsing,
// hashing and verifying them.
//
// A key is one string, "spool_<id>_<secret>". The id names the key's row
// (it is no secret: listings and the audit log show it); the secret is 32
// random bytes, base64url without padding (43 characters). Only a hash of
// the secret is stored: argon2id (golang.org/x/crypto/argon2) with the
// first configuration of OWASP's Password Storage Cheat Sheet, 19 MiB of
// memory, 2 passes, 1 lane, a 16-byte random salt and a 32-byte tag,
// written in the PHC string format
// ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<tag>"), so that a hash made with
// other parameters still verifies.
package apikey

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/spoolvideo/spool/libs/ident"
)

// Prefix begins every key.
const Prefix = "spool_"

// SecretBytes is how many random bytes a minted key's secret holds.
const SecretBytes = 32

// MinSecretLen is the shortest secret Parse accepts, in characters: that
// of SecretBytes in base64url.
const MinSecretLen = 43

// The argon2id parameters of new hashes.
const (
	memoryKiB = 19 * 1024
	passes    = 2
	lanes     = 1
	saltLen   = 16
	tagLen    = 32
)

// IDRule says in words what a key id is.
const IDRule = "1..32 of a-z and 0-9, starting with a letter"

// ErrMalformed is a string that is not of the key's form.
var ErrMalformed = errors.New("apikey: not an API key (spool_<id>_<secret>)")

// ValidID reports whether id follows IDRule. Ids hold no '_', which
// separates them from the secret.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 32 || id[0] < 'a' || id[0] > 'z' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// NewID is a fresh key id: "k" and 16 random base-32 digits.
func NewID() string { return ident.New("k", 16) }

// Mint makes a new key of id (NewID when empty): its token, to be shown
// once, and the hash to store.
func Mint(id string) (token, hash string, err error) {
	if id == "" {
		id = NewID()
	}
	if !ValidID(id) {
		return "", "", fmt.Errorf("apikey: id %q: want %s", id, IDRule)
	}
	secret := NewSecret()
	hash, err = Hash(secret)
	if err != nil {
		return "", "", err
	}
	return Prefix + id + "_" + secret, hash, nil
}

// NewSecret is SecretBytes random bytes in base64url without padding
// (MinSecretLen characters): a key's secret, or any other secret spool
// generates, such as the key that signs the gateway's URLs.
func NewSecret() string {
	b := make([]byte, SecretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Parse splits a token into its id and secret. ErrMalformed (wrapped, with
// what is wrong, never the secret) for any other string.
func Parse(token string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok {
		return "", "", fmt.Errorf("%w: it does not begin with %q", ErrMalformed, Prefix)
	}
	id, secret, ok = strings.Cut(rest, "_")
	switch {
	case !ok || !ValidID(id):
		return "", "", fmt.Errorf("%w: its id is not %s", ErrMalformed, IDRule)
	case len(secret) < MinSecretLen || len(secret) > 512 || strings.Trim(secret, base64URL) != "":
		return "", "", fmt.Errorf("%w: its secret is not %d..512 characters of base64url", ErrMalformed, MinSecretLen)
	}
	return id, secret, nil
}

const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// Hash is the PHC string of secret's argon2id hash, with a fresh salt.
func Hash(secret string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("apikey: %w", err)
	}
	tag := argon2.IDKey([]byte(secret), salt, passes, memoryKiB, lanes, tagLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, lanes,
		enc.EncodeToString(salt), enc.EncodeToString(tag)), nil
}

// Verify reports whether secret is the one hash was made of. A hash that is
// not an argon2id PHC string this package can read is an error.
func Verify(secret, hash string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errors.New("apikey: the stored hash is not an argon2id PHC string")
	}
	var version int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("apikey: the stored hash's argon2 version %q: want v=%d", parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m < 8 || m > 4<<20 || t < 1 || t > 64 || p < 1 {
		return false, fmt.Errorf("apikey: the stored hash's parameters %q cannot be read", parts[3])
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, errors.New("apikey: the stored hash's salt is not base64")
	}
	tag, err := enc.DecodeString(parts[5])
	if err != nil || len(tag) < 16 || len(tag) > 64 {
		return false, errors.New("apikey: the stored hash's tag is not base64 of 16..64 bytes")
	}
	got := argon2.IDKey([]byte(secret), salt, t, m, p, uint32(len(tag)))
	return subtle.ConstantTimeCompare(got, tag) == 1, nil
}
