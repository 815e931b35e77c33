package apikey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/apikey"
)

func TestMintParseVerify(t *testing.T) {
	token, hash, err := apikey.Mint("")
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := apikey.Parse(token)
	if err != nil || !apikey.ValidID(id) || len(secret) != apikey.MinSecretLen {
		t.Fatalf("Parse(%q) = %q, %d characters, %v", token, id, len(secret), err)
	}
	if strings.Contains(hash, secret) || !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", hash)
	}
	if ok, err := apikey.Verify(secret, hash); !ok || err != nil {
		t.Fatalf("Verify of the secret: %v %v", ok, err)
	}
	other := []byte(secret)
	other[0] ^= 1
	if ok, err := apikey.Verify(string(other), hash); ok || err != nil {
		t.Fatalf("Verify of another secret: %v %v", ok, err)
	}
	if again, _ := apikey.Hash(secret); again == hash {
		t.Fatal("two hashes of one secret are equal: the salt is not fresh")
	}
	// A hash made with other parameters still verifies.
	const weak = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
	if _, err := apikey.Verify(secret, weak+"AAAA"); err == nil {
		t.Fatal("a short tag was read")
	}
	for _, bad := range []string{"", "bcrypt", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$" + strings.Repeat("A", 43)} {
		if _, err := apikey.Verify(secret, bad); err == nil {
			t.Errorf("Verify against %q: no error", bad)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	long := strings.Repeat("A", apikey.MinSecretLen)
	for _, bad := range []string{"", "token", "spool_", "spool_k1", "spool_k1_short", "spool_K1_" + long, "spool__" + long,
		"xspool_k1_" + long, "spool_k1_" + long + "!", "spool_k-1_" + long} {
		if _, _, err := apikey.Parse(bad); !errors.Is(err, apikey.ErrMalformed) {
			t.Errorf("Parse(%q): %v", bad, err)
		}
	}
	if id, secret, err := apikey.Parse("spool_boot_" + long + "_x-"); err != nil || id != "boot" || secret != long+"_x-" {
		t.Fatalf("a secret with '_': %q %q %v", id, secret, err)
	}
	if _, _, err := apikey.Mint("Bad"); err == nil {
		t.Fatal("Mint of a bad id")
	}
}

// BenchmarkVerify is the cost of checking one key against its hash: what a
// request pays when the gateway has not verified its key lately.
func BenchmarkVerify(b *testing.B) {
	token, hash, _ := apikey.Mint("")
	_, secret, _ := apikey.Parse(token)
	for b.Loop() {
		if ok, err := apikey.Verify(secret, hash); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
