package ident_test

import (
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/ident"
)

func TestValid(t *testing.T) {
	for _, ok := range []string{"a", "j42", "job-1_x", "0", strings.Repeat("z", 64)} {
		if !ident.Valid(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"", "-a", "_a", "A", "a.b", "a b", "a/b", "é", "a*", ">", strings.Repeat("z", 65)} {
		if ident.Valid(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNew(t *testing.T) {
	a, b := ident.New("k", 16), ident.New("k", 16)
	if a == b || len(a) != 17 || !ident.Valid(a) || !strings.HasPrefix(a, "k") {
		t.Fatalf("New: %q %q", a, b)
	}
}
