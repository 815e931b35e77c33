package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopTimeout bounds the wait for a child to exit after the stop signal,
// after which it is killed.
const stopTimeout = 15 * time.Second

// process is a long-running child whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	done    chan struct{} // closed when the child has exited
	err     error         // the child's exit status, valid once done is closed
}

// startProcess starts cmd with its output appended to logPath. The child is
// sent deathSig if this process dies, and runs as cred when not nil.
func startProcess(name string, cmd *exec.Cmd, logPath string, deathSig syscall.Signal, cred *syscall.Credential) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr(deathSig, cred)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, cmd.Path, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, log: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports, without blocking, whether the child has exited, with an
// error quoting its log when it has.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited early (%v); log %s:\n%s", p.name, p.err, p.logPath, tail(p.logPath))
	default:
		return nil
	}
}

// stop sends sig and waits for the child to exit, killing it after
// stopTimeout. A child that already exited is not an error.
func (p *process) stop(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: signal %v: %w", p.name, sig, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	// Kill the whole process group: the child may have children of its own.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s: did not exit within %v of %v; killed", p.name, stopTimeout, sig)
}

// runOnce runs a short-lived command to completion with its output appended
// to logPath; a failure quotes the command's output.
func runOnce(ctx context.Context, name string, cmd *exec.Cmd, logPath string, cred *syscall.Credential) error {
	var out bytes.Buffer
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", name, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "+ %s\n", strings.Join(cmd.Args, " "))
	w := io.MultiWriter(f, &out)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr(syscall.SIGKILL, cred)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return fmt.Errorf("%s: %s: %w:\n%s", name, strings.Join(cmd.Args, " "), err, lastLines(out.String(), 20))
	}
	return nil
}

// tail returns the last lines of the file at path, for error messages.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	const max = 4096
	if st, err := f.Stat(); err == nil && st.Size() > max {
		if _, err := f.Seek(st.Size()-max, io.SeekStart); err != nil {
			return fmt.Sprintf("(cannot read log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return lastLines(string(b), 20)
}

// lastLines returns the last n lines of s, indented.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// waitFor calls ready every interval until it returns nil, ctx is done,
// timeout passes, or p (when not nil) exits.
func waitFor(ctx context.Context, what string, timeout time.Duration, p *process, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	const interval = 25 * time.Millisecond
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		if p != nil {
			if err := p.exited(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if p != nil {
				return fmt.Errorf("%s not ready: %w (last check: %v); log %s:\n%s", what, ctx.Err(), last, p.logPath, tail(p.logPath))
			}
			return fmt.Errorf("%s not ready: %w (last check: %v)", what, ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}
