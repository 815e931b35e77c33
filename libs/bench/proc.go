package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of the CPU times in /proc: 1/100 s
// on every architecture Go runs on.
const clockTick = 10 * time.Millisecond

// ProcStat is what /proc/<pid>/stat says of a process's CPU use.
type ProcStat struct {
	PID, PPID int
	// CPU is the user + system time the process has used, and Children
	// that of its children which have exited and been waited for (cutime +
	// cstime): a server that forks a child per connection, as Postgres
	// does, keeps the time of its ended children there.
	CPU, Children time.Duration
}

// ReadProcStat reads /proc/<pid>/stat (Linux only). A process that has
// exited is an error wrapping fs.ErrNotExist.
func ReadProcStat(pid int) (ProcStat, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ProcStat{}, fmt.Errorf("bench: cpu of process %d: %w", pid, err)
	}
	return parseProcStat(pid, string(data))
}

// parseProcStat parses one /proc/<pid>/stat line: "pid (comm) state ppid
// … utime stime cutime cstime …", whose comm may hold spaces and parentheses.
func parseProcStat(pid int, line string) (ProcStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("bench: /proc/%d/stat: no command name in %q", pid, line)
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return ProcStat{}, fmt.Errorf("bench: /proc/%d/stat: %d fields after the name, want ≥ 15", pid, len(f))
	}
	var n [5]int64 // ppid, utime, stime, cutime, cstime: fields 4, 14 to 17
	for k, j := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[j], 10, 64)
		if err != nil {
			return ProcStat{}, fmt.Errorf("bench: /proc/%d/stat field %d %q: %w", pid, j+3, f[j], err)
		}
		n[k] = v
	}
	return ProcStat{PID: pid, PPID: int(n[0]), CPU: time.Duration(n[1]+n[2]) * clockTick,
		Children: time.Duration(n[3]+n[4]) * clockTick}, nil
}

// TreeCPU is the CPU time a process and its children have used: its own,
// its live children's, and its ended children's (Linux only). It reads
// every process's stat to find the children, so call it a few times a run,
// not in a loop.
func TreeCPU(pid int) (time.Duration, error) {
	root, err := ReadProcStat(pid)
	if err != nil {
		return 0, err
	}
	total := root.CPU + root.Children
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil || child == pid {
			continue
		}
		st, err := ReadProcStat(child)
		if err != nil || st.PPID != pid { // it may have exited since the listing
			continue
		}
		total += st.CPU
	}
	return total, nil
}

// MachineCPU is the time all CPUs have spent busy, and in all, since boot,
// from the first line of /proc/stat (idle and iowait count as not busy).
func MachineCPU() (busy, total time.Duration, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("bench: cpu accounting: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("bench: cpu accounting: /proc/stat: %w", err)
	}
	return parseMachineCPU(line)
}

// parseMachineCPU parses "cpu user nice system idle iowait irq softirq
// steal …", in USER_HZ.
func parseMachineCPU(line string) (busy, total time.Duration, err error) {
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("bench: cpu accounting: /proc/stat starts %q", line)
	}
	for i, v := range fields[1:min(len(fields), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: cpu accounting: /proc/stat field %d %q: %w", i+1, v, err)
		}
		total += time.Duration(n) * clockTick
		if i != 3 && i != 4 { // idle and iowait
			busy += time.Duration(n) * clockTick
		}
	}
	return busy, total, nil
}
