package bench

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/realpart"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may set.
	line := "4242 (post (gres) x) S 17 4242 4242 0 -1 4194560 900 0 0 0 250 130 40 2 20 0 1 0 100 1000 10 18446744073709551615\n"
	got, err := parseProcStat(4242, line)
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStat{PID: 4242, PPID: 17, CPU: 3800 * time.Millisecond, Children: 420 * time.Millisecond}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"4242 no name here", "4242 (x) S 1 2 3"} {
		if _, err := parseProcStat(4242, bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseMachineCPU(t *testing.T) {
	busy, total, err := parseMachineCPU("cpu  100 5 50 800 40 3 2 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if busy != 1600*time.Millisecond || total != 10*time.Second {
		t.Fatalf("busy %v total %v, want 1.6s of 10s", busy, total)
	}
	if _, _, err := parseMachineCPU("intr 1 2 3"); err == nil {
		t.Fatal("not a cpu line: no error")
	}
}

// TestTreeCPU: a process's tree includes the time of a child that ended.
func TestTreeCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		realpart.Missing(t, "bench: TreeCPU reads /proc, which this machine lacks (Linux only): %v", err)
	}
	before, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self, err := ReadProcStat(os.Getpid())
	if err != nil || self.PPID != os.Getppid() {
		t.Fatalf("own stat %+v, %v; parent %d", self, err, os.Getppid())
	}
	// A child that does a fixed amount of work (its CPU time, not its wall
	// time, is the same on a loaded machine), then is waited for.
	child := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	spent := child.ProcessState.UserTime() + child.ProcessState.SystemTime()
	after, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in 10 ms ticks, each read rounded down: allow three.
	if spent < 50*time.Millisecond || after-before < spent-3*clockTick {
		t.Fatalf("tree CPU grew by %v after a child that used %v", after-before, spent)
	}
	if busy, total, err := MachineCPU(); err != nil || busy <= 0 || busy > total {
		t.Fatalf("machine: busy %v of %v, %v", busy, total, err)
	}
}
