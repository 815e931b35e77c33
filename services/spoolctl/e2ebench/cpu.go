package e2ebench

import (
	"fmt"
	"runtime"
	"syscall"
	"time"

	"github.com/spoolvideo/spool/libs/bench"
)

// cpuMark is a point in time with the CPU this process, Postgres and the
// whole machine had used by then, to say where a run's time went: this
// process (the services and NATS), Postgres, the rest of the machine, and
// idle.
type cpuMark struct {
	at          time.Time
	self        time.Duration // user + system of this process
	postgres    time.Duration // the postmaster and its backends
	busy, total time.Duration // all CPUs, from /proc/stat
}

// CPUShare is where the CPUs went between two marks, in cores (1 = one CPU
// busy all the time).
type CPUShare struct {
	CPUs          int     `json:"cpus"`
	SelfCores     float64 `json:"self_cores"`     // this process: the dispatcher, the worker, NATS
	PostgresCores float64 `json:"postgres_cores"` // the devstack's Postgres (0 with $SPOOL_PG_DSN)
	// OtherCores is the rest of the machine's busy time: MinIO, the
	// kernel, anything else running (other tests on a shared machine).
	OtherCores float64 `json:"other_cores"`
	IdleCores  float64 `json:"idle_cores"` // iowait included
}

// markCPU marks now; pgPID is the Postgres server's process, 0 for none.
func markCPU(pgPID int) (cpuMark, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuMark{}, fmt.Errorf("getrusage: %w", err)
	}
	m := cpuMark{at: time.Now(), self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	if pgPID != 0 {
		pg, err := bench.TreeCPU(pgPID)
		if err != nil {
			return cpuMark{}, err
		}
		m.postgres = pg
	}
	busy, total, err := bench.MachineCPU()
	if err != nil {
		return cpuMark{}, err
	}
	m.busy, m.total = busy, total
	return m, nil
}

// share is the CPU use between a and b.
func share(a, b cpuMark) CPUShare {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return CPUShare{CPUs: runtime.NumCPU()}
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / wall }
	self, pg, busy := cores(b.self-a.self), cores(b.postgres-a.postgres), cores(b.busy-a.busy)
	all := cores(b.total - a.total)
	return CPUShare{CPUs: runtime.NumCPU(), SelfCores: self, PostgresCores: pg, OtherCores: max(busy-self-pg, 0), IdleCores: max(all-busy, 0)}
}
