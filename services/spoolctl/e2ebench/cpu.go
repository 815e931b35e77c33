package e2ebench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMark is a point in time with the CPU this process and the whole
// machine had used by then, to say where a run's time went: this process
// (the services and NATS), the rest of the machine (Postgres above all),
// and idle.
type cpuMark struct {
	at          time.Time
	self        time.Duration // user + system of this process
	busy, total time.Duration // all CPUs, from /proc/stat
}

// CPUShare is where the CPUs went between two marks, in cores (1 = one CPU
// busy all the time).
type CPUShare struct {
	CPUs       int     `json:"cpus"`
	SelfCores  float64 `json:"self_cores"`  // this process: the dispatcher, the worker, NATS
	OtherCores float64 `json:"other_cores"` // the rest of the machine: Postgres, the kernel, anything else running
	IdleCores  float64 `json:"idle_cores"`
}

func markCPU() (cpuMark, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuMark{}, fmt.Errorf("getrusage: %w", err)
	}
	m := cpuMark{at: time.Now(), self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuMark{}, fmt.Errorf("cpu accounting: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return cpuMark{}, fmt.Errorf("cpu accounting: /proc/stat: %w", err)
	}
	// cpu user nice system idle iowait irq softirq steal guest guest_nice, in USER_HZ (1/100 s).
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return cpuMark{}, fmt.Errorf("cpu accounting: /proc/stat starts %q", line)
	}
	const tick = 10 * time.Millisecond
	for i, v := range fields[1:min(len(fields), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return cpuMark{}, fmt.Errorf("cpu accounting: /proc/stat field %d %q: %w", i+1, v, err)
		}
		m.total += time.Duration(n) * tick
		if i != 3 && i != 4 { // idle and iowait
			m.busy += time.Duration(n) * tick
		}
	}
	return m, nil
}

// share is the CPU use between a and b.
func share(a, b cpuMark) CPUShare {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return CPUShare{CPUs: runtime.NumCPU()}
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / wall }
	self, busy := cores(b.self-a.self), cores(b.busy-a.busy)
	all := cores(b.total - a.total)
	return CPUShare{CPUs: runtime.NumCPU(), SelfCores: self, OtherCores: max(busy-self, 0), IdleCores: max(all-busy, 0)}
}
