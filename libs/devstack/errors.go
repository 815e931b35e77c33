package devstack

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMissingBinary is matched (errors.Is) by every error that reports a
// server or client binary that could not be found.
var ErrMissingBinary = errors.New("missing binary")

// ErrStopped is returned by Add on a Stack that was stopped.
var ErrStopped = errors.New("devstack: stack stopped")

// MissingBinaryError reports a binary that was not found, where it was looked
// for, and how to install it. It matches ErrMissingBinary.
type MissingBinaryError struct {
	Name    string   // the binary, e.g. "postgres"
	Looked  []string // where it was looked for
	Install string   // how to install it, a full sentence fragment
}

func (e *MissingBinaryError) Error() string {
	return fmt.Sprintf("%s not found (looked in %s): %s", e.Name, strings.Join(e.Looked, ", "), e.Install)
}

// Is makes errors.Is(err, ErrMissingBinary) true.
func (e *MissingBinaryError) Is(target error) bool { return target == ErrMissingBinary }
