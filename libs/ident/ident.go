// Package ident holds the one rule for the names spool puts in subjects,
// object keys and tables: job ids, pools and tenants.
package ident

import "crypto/rand"

// Rule says in words what Valid accepts, for error messages.
const Rule = "1..64 of a-z, 0-9, '-' and '_', starting with a letter or digit"

// MaxLen is the longest valid name.
const MaxLen = 64

// Valid reports whether s follows Rule. Such a name is safe as a NATS
// subject token, an object key segment and a Postgres CHECK'd column.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > MaxLen || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// New is a fresh name: prefix, then n random base-32 digits (0-9, a-v),
// 5 bits each. It follows Rule when prefix does and the whole is at most
// MaxLen long.
func New(prefix string, n int) string {
	const digits = "0123456789abcdefghijklmnopqrstuv"
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = digits[b[i]%32]
	}
	return prefix + string(b)
}
