package workerbench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/libs/store"
)

// ScalingCPU is where the machine's CPUs went during one scaling run, from
// the job's submit to its last DONE committed, in cores (1 = one CPU busy
// all the time), read from /proc; and Postgres's commit rate.
type ScalingCPU struct {
	WallS float64 `json:"wall_s"`
	// SegmentsPerS is the rate of DONE commits the run asked of the
	// control plane: segments ÷ makespan.
	SegmentsPerS float64 `json:"segments_per_s"`
	Dispatcher   float64 `json:"dispatcher_cores"` // the spool-dispatcher process
	// NATS is the benchmark's own process: the embedded NATS server, with
	// the benchmark's polling of one job row every 20 ms.
	NATS     float64 `json:"nats_cores"`
	Postgres float64 `json:"postgres_cores"` // the postmaster and its backends
	// Workers is every spool-worker process together, Worker each one.
	Workers float64   `json:"workers_cores"`
	Worker  []float64 `json:"worker_cores"`
	// Other is the rest of the machine's busy time: MinIO, the kernel, and
	// whatever else runs there (other tests on a shared machine).
	Other float64 `json:"other_cores"`
	Idle  float64 `json:"idle_cores"`
	CPUs  int     `json:"cpus"`
	// CommitsPerS and WALSyncsPerS are Postgres's transactions committed
	// in spool's database and WAL flushes to disk, per second.
	CommitsPerS  float64 `json:"pg_commits_per_s"`
	WALSyncsPerS float64 `json:"pg_wal_syncs_per_s"`
}

// PerSegmentUS is the CPU time cores represents per segment, in µs.
func (c ScalingCPU) PerSegmentUS(cores float64) float64 {
	if c.SegmentsPerS == 0 {
		return 0
	}
	return cores / c.SegmentsPerS * 1e6
}

// cpuPIDs are the processes of a scaling run whose CPU is read.
type cpuPIDs struct {
	dispatcher int
	workers    []int
	postmaster int // 0 when Postgres is not the devstack's own ($SPOOL_PG_DSN)
}

// cpuMark is a moment's CPU counters of a run's processes and the machine.
type cpuMark struct {
	at                         time.Time
	self, dispatcher, postgres time.Duration
	workers                    []time.Duration
	busy, total                time.Duration
	pg                         store.ServerStats
}

func (r *rig) markCPU(ctx context.Context, p cpuPIDs) (cpuMark, error) {
	m := cpuMark{at: time.Now()}
	self, err := bench.ReadProcStat(os.Getpid())
	if err != nil {
		return cpuMark{}, err
	}
	m.self = self.CPU
	d, err := bench.ReadProcStat(p.dispatcher)
	if err != nil {
		return cpuMark{}, err
	}
	m.dispatcher = d.CPU
	for _, pid := range p.workers {
		w, err := bench.ReadProcStat(pid)
		if err != nil {
			return cpuMark{}, err
		}
		m.workers = append(m.workers, w.CPU)
	}
	if p.postmaster != 0 {
		if m.postgres, err = bench.TreeCPU(p.postmaster); err != nil {
			return cpuMark{}, err
		}
	}
	if m.busy, m.total, err = bench.MachineCPU(); err != nil {
		return cpuMark{}, err
	}
	if m.pg, err = r.store.ServerStats(ctx); err != nil {
		return cpuMark{}, err
	}
	return m, nil
}

// cpuBetween is the CPU use between marks a and b.
func cpuBetween(a, b cpuMark) ScalingCPU {
	wall := b.at.Sub(a.at).Seconds()
	c := ScalingCPU{WallS: wall, CPUs: runtime.NumCPU()}
	if wall <= 0 {
		return c
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / wall }
	c.Dispatcher, c.NATS, c.Postgres = cores(b.dispatcher-a.dispatcher), cores(b.self-a.self), cores(b.postgres-a.postgres)
	for i := range min(len(a.workers), len(b.workers)) {
		w := cores(b.workers[i] - a.workers[i])
		c.Worker = append(c.Worker, w)
		c.Workers += w
	}
	busy := cores(b.busy - a.busy)
	c.Other = max(busy-c.Dispatcher-c.NATS-c.Postgres-c.Workers, 0)
	c.Idle = max(cores(b.total-a.total)-busy, 0)
	c.CommitsPerS = float64(b.pg.Commits-a.pg.Commits) / wall
	c.WALSyncsPerS = float64(b.pg.WALSyncs-a.pg.WALSyncs) / wall
	return c
}

// cpuSummary is one line of the CPU table.
func cpuSummary(c ScalingCPU) string {
	workers := make([]string, len(c.Worker))
	top := 0.0
	for i, w := range c.Worker {
		workers[i], top = fmt.Sprintf("%.2f", w), max(top, w)
	}
	return fmt.Sprintf("cores: dispatcher %.2f, NATS %.2f, Postgres %.2f, %d workers %.2f (busiest %.2f), other %.2f, idle %.2f; "+
		"%.0f segments/s, %.0f commits/s, %.0f WAL fsyncs/s",
		c.Dispatcher, c.NATS, c.Postgres, len(c.Worker), c.Workers, top, c.Other, c.Idle, c.SegmentsPerS, c.CommitsPerS, c.WALSyncsPerS)
}
