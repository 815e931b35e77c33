package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// Service is a program run as a child process, such as a spool binary of
// bin/ run against a Stack, with its output appended to a log file. It is
// in its own process group and gets SIGKILL if this process dies. Its
// methods are safe for concurrent use.
type Service struct {
	p *process
}

// StartService starts bin with args and env (added to this process's
// environment; later entries win) and its output appended to logPath.
// name labels errors.
func StartService(name, bin string, args, env []string, logPath string) (*Service, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p, err := startProcess(name, cmd, logPath, syscall.SIGKILL, nil)
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	return &Service{p: p}, nil
}

// Name returns the name the service was started with.
func (s *Service) Name() string { return s.p.name }

// Pid returns the child's process id.
func (s *Service) Pid() int { return s.p.cmd.Process.Pid }

// LogPath returns the file its output goes to.
func (s *Service) LogPath() string { return s.p.logPath }

// Done is closed when the child has exited.
func (s *Service) Done() <-chan struct{} { return s.p.done }

// Exited returns, without blocking, nil while the child runs, and once it
// has exited an error with its exit status and the end of its log.
func (s *Service) Exited() error { return s.p.exited() }

// ExitErr returns the child's exit status (nil for a zero exit) once it has
// exited, and before that an error saying it still runs.
func (s *Service) ExitErr() error {
	select {
	case <-s.p.done:
		return s.p.err
	default:
		return errRunning
	}
}

var errRunning = errors.New("devstack: the service is still running")

// Signal sends sig to the child alone (SIGTERM asks a spool service to
// drain). It does not wait; see Wait.
func (s *Service) Signal(sig syscall.Signal) error {
	if err := s.p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("devstack: %s: signal %v: %w", s.p.name, sig, err)
	}
	return nil
}

// Kill sends SIGKILL to the child's process group and waits for it to exit.
func (s *Service) Kill() error { return s.p.kill() }

// Wait waits for the child to exit or ctx to end, and returns its exit
// status (nil for a zero exit) or ctx's error.
func (s *Service) Wait(ctx context.Context) error {
	select {
	case <-s.p.done:
		return s.p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop sends sig, waits for the child to exit, and kills it after 15 s.
func (s *Service) Stop(sig syscall.Signal) error { return s.p.stop(sig) }

// RSS returns the child's resident set size now and its peak (VmRSS and
// VmHWM of /proc/<pid>/status), in bytes. It works on Linux only.
func (s *Service) RSS() (now, peak int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(s.Pid()) + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("devstack: %s: rss: %w", s.p.name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("devstack: %s: rss: %s: %w", s.p.name, k, err)
		}
		if k == "VmRSS" {
			now = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("devstack: %s: rss: %w", s.p.name, err)
	}
	return now, peak, nil
}
