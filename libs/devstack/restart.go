package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotRunning is returned by Kill and StopFast for a part that is not
// running, and by Restart and Wipe for one that is.
var ErrNotRunning = errors.New("devstack: part not in the state asked for")

// Kill ends part (PartNATS, PartPostgres or PartMinIO) abruptly, as a crash
// would, and waits until it is gone: Postgres and MinIO get SIGKILL, sent to
// their whole process group (the Postgres backends die with the
// postmaster); the embedded NATS server is shut down at once, its clients
// cut off (it runs in this process, so it cannot be killed alone). Its port
// and data stay, for Restart. A Postgres given by $SPOOL_PG_DSN is not ours
// to kill: that is an error. The stack's Postgres runs with fsync and
// synchronous_commit off (see postgres.go), so a kill may lose its last
// commits, as the settings allow; StopFast loses none.
func (s *Stack) Kill(part string) error {
	return s.end(part, true)
}

// StopFast stops part cleanly and waits for it: Postgres with a fast
// shutdown (clients are disconnected, their transactions rolled back),
// MinIO with SIGTERM, NATS with a shutdown. Its port and data stay, for
// Restart.
func (s *Stack) StopFast(part string) error {
	return s.end(part, false)
}

func (s *Stack) end(part string, kill bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	switch part {
	case PartNATS:
		if s.nats == nil {
			return fmt.Errorf("%w: %s is not running", ErrNotRunning, part)
		}
		s.ports[part] = portOf(s.NATSURL)
		err := s.nats.stop()
		s.nats = nil
		return err
	case PartPostgres:
		if s.pg == nil {
			return fmt.Errorf("%w: %s is not running", ErrNotRunning, part)
		}
		if s.pg.proc == nil {
			return fmt.Errorf("devstack: postgres comes from $%s: not ours to stop", pgDSNEnv)
		}
		s.ports[part] = portOf(s.PGDSN)
		var err error
		if kill {
			err = s.pg.proc.kill()
			s.pg.removeSocketDir()
		} else {
			err = s.pg.stop()
		}
		s.pg = nil
		return err
	case PartMinIO:
		if s.minio == nil {
			return fmt.Errorf("%w: %s is not running", ErrNotRunning, part)
		}
		s.ports[part] = portOf("//" + s.S3Endpoint)
		var err error
		if kill {
			err = s.minio.proc.kill()
		} else {
			err = s.minio.stop()
		}
		s.minio = nil
		return err
	}
	return fmt.Errorf("devstack: no part %q to stop: want %s, %s or %s", part, PartNATS, PartPostgres, PartMinIO)
}

// Restart starts part again, after Kill or StopFast, on the same port and
// the same data, and waits until it is healthy; NATSURL, PGDSN and
// S3Endpoint do not change, so clients reconnect on their own. MinIO gets
// its bucket and the services' users (S3User) again, as they were, should
// Wipe have removed them.
func (s *Stack) Restart(ctx context.Context, part string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	port, ok := s.ports[part]
	if !ok || s.running(part) {
		return fmt.Errorf("%w: %s was not stopped by Kill or StopFast", ErrNotRunning, part)
	}
	switch part {
	case PartNATS:
		n, err := startNATS(ctx, s.dir, port, s.auth, s.tls, s.log)
		if err != nil {
			return fmt.Errorf("devstack: restart: %w", err)
		}
		s.nats = n
		if err := s.declare(ctx); err != nil { // after a Wipe, the store is empty
			return fmt.Errorf("devstack: restart: %w", err)
		}
	case PartPostgres:
		// A killed postmaster's backends may hold its shared memory for a
		// moment after it died: Postgres then refuses to start ("pre-existing
		// shared memory block ... is still in use") until they are gone.
		var p *postgresServer
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			p, err = startPostgres(ctx, s.find, s.dir, port, s.log)
			if err == nil || !strings.Contains(err.Error(), "pre-existing shared memory block") || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("devstack: restart: %w", err)
		}
		s.pg = p
	case PartMinIO:
		m, err := startMinIO(ctx, s.find, s.dir, port, false, s.log)
		if err != nil {
			return fmt.Errorf("devstack: restart: %w", err)
		}
		if err := provisionMinIO(ctx, m.endpoint, s.s3users); err != nil { // a wiped MinIO has none
			return errors.Join(fmt.Errorf("devstack: restart: %w", err), m.stop())
		}
		s.minio = m
	default:
		return fmt.Errorf("devstack: no part %q to restart", part)
	}
	return nil
}

// Wipe removes the data of a stopped part, as a disk lost would: the next
// Restart starts it empty. Only NATS (its JetStream store) and MinIO (its
// objects) may be wiped; Postgres is the truth.
func (s *Stack) Wipe(part string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running(part) {
		return fmt.Errorf("%w: %s is running; stop it first", ErrNotRunning, part)
	}
	var dir string
	switch part {
	case PartNATS:
		dir = filepath.Join(s.dir, "nats")
	case PartMinIO:
		dir = filepath.Join(s.dir, "minio")
	default:
		return fmt.Errorf("devstack: wipe %q: want %s or %s", part, PartNATS, PartMinIO)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("devstack: wipe %s: %w", part, err)
	}
	return nil
}

// running reports whether part runs now; s.mu is held.
func (s *Stack) running(part string) bool {
	switch part {
	case PartNATS:
		return s.nats != nil
	case PartPostgres:
		return s.pg != nil
	case PartMinIO:
		return s.minio != nil
	}
	return false
}

// portOf returns the port of a URL such as nats://127.0.0.1:4222 or
// postgres://u@127.0.0.1:5432/db, 0 when it has none.
func portOf(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	_, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// kill sends SIGKILL to the child's process group and waits for it to exit.
func (p *process) kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: kill: %w", p.name, err)
	}
	<-p.done
	// The group's other members (Postgres's backends, holding its shared
	// memory and port) die on their own time: a restart must wait for them.
	deadline := time.Now().Add(stopTimeout)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: process group %d still alive %v after SIGKILL", p.name, pgid, stopTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
