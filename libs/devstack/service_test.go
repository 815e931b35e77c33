package devstack_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack"
)

func TestService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}

	s, err := devstack.StartService("sleeper", sh, []string{"-c", `echo "up $GREETING"; exec sleep 60`}, []string{"GREETING=hello"}, filepath.Join(dir, "sleeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(ctx, t, s, "up hello") // the child's output, with its env
	if s.Exited() != nil || s.ExitErr() == nil {
		t.Fatalf("a running service: Exited %v, ExitErr %v", s.Exited(), s.ExitErr())
	}
	now, peak, err := s.RSS()
	if err != nil || now <= 0 || peak < now {
		t.Fatalf("RSS = %d, %d, %v", now, peak, err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := s.Wait(ctx); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("killed service: %v", err)
	}

	s, err = devstack.StartService("term", sh, []string{"-c", `trap 'exit 3' TERM; echo trapped; while :; do sleep 0.05; done`}, nil, filepath.Join(dir, "term.log"))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(ctx, t, s, "trapped")
	if err := s.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.ExitErr(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("SIGTERM: exit %v, want status 3", err)
	}
	if err := s.Exited(); err == nil || !strings.Contains(err.Error(), "term exited") {
		t.Errorf("Exited() = %v", err)
	}
}

// waitLog waits until the service's log holds want.
func waitLog(ctx context.Context, t *testing.T, s *devstack.Service, want string) {
	t.Helper()
	for {
		log, _ := os.ReadFile(s.LogPath())
		if strings.Contains(string(log), want) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("log %q never held %q", log, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
