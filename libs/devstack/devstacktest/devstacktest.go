// Package devstacktest gives integration tests one shared devstack per test
// binary, with the parts each test asks for started lazily.
//
//	func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		s := devstacktest.Require(t, devstacktest.NATS, devstacktest.Postgres)
//		... s.NATSURL, s.PGDSN ...
//	}
//
// A part that cannot start fails the test (t.Fatalf) with the message saying
// how to install what is missing: integration tests never skip in CI. Only
// under "go test -short" outside CI (CI != "true") does Require skip instead.
// MinIO is built into <repo root>/.spool/bin when missing (about 4 minutes the
// first time), since CI starts from a clean tree.
package devstacktest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/realpart"
)

// Part is a part of the stack a test needs.
type Part int

// The parts.
const (
	NATS Part = iota
	Postgres
	MinIO
)

func (p Part) String() string {
	switch p {
	case NATS:
		return "nats"
	case Postgres:
		return "postgres"
	case MinIO:
		return "minio"
	}
	return fmt.Sprintf("Part(%d)", int(p))
}

// startTimeout bounds starting a part, a MinIO build included.
const startTimeout = 10 * time.Minute

var (
	mu     sync.Mutex
	stack  *devstack.Stack
	failed = map[Part]error{} // parts that failed to start, not retried
)

// Run runs the tests of m, then stops the stack Require started, if any. A
// failure to stop fails the run.
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if stack != nil {
		if err := stack.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "devstacktest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		stack = nil
	}
	return code
}

// Require returns the test binary's shared stack, starting the parts asked
// for that it does not run yet. A part that cannot start fails t, or skips it
// under -short outside CI; a part that failed once is not tried again.
// Safe for concurrent use by parallel tests.
func Require(t testing.TB, parts ...Part) *devstack.Stack {
	t.Helper()
	opts := options(t, parts)
	s, err := require(opts, parts)
	if err != nil {
		realpart.Missing(t, "devstacktest: %v", err)
	}
	return s
}

func require(opts devstack.Options, parts []Part) (*devstack.Stack, error) {
	mu.Lock()
	defer mu.Unlock()
	for _, p := range parts {
		if err := failed[p]; err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if stack == nil {
		s, err := devstack.Start(ctx, devstack.Options{})
		if err != nil {
			return nil, err
		}
		stack = s
	}
	if err := stack.Add(ctx, opts); err != nil {
		for _, p := range parts {
			failed[p] = err
		}
		return nil, err
	}
	return stack, nil
}

// Private starts a stack of its own for t, with the parts asked for, and
// stops it when t ends: for tests that kill, restart or wipe parts
// (Stack.Kill, Restart, Wipe), which must not disturb the shared stack of
// Require. A part that cannot start fails t as Require does.
func Private(t testing.TB, parts ...Part) *devstack.Stack {
	t.Helper()
	opts := options(t, parts)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := devstack.Start(ctx, opts)
	if err != nil {
		realpart.Missing(t, "devstacktest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("devstacktest: %v", err)
		}
	})
	return s
}

// options returns the Options that start parts.
func options(t testing.TB, parts []Part) devstack.Options {
	t.Helper()
	opts := devstack.Options{BuildMinIO: true}
	for _, p := range parts {
		switch p {
		case NATS:
			opts.NATS = true
		case Postgres:
			opts.Postgres = true
		case MinIO:
			opts.MinIO = true
		default:
			t.Fatalf("devstacktest: unknown %v", p)
		}
	}
	return opts
}
