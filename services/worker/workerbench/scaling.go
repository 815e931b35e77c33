package workerbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Scaling is the "scaling" object of bench/results.json: per slot count N,
// makespan ÷ (Σ engine time ÷ N), inverted so that 1 is perfect.
type Scaling struct {
	Efficiency map[string]float64 `json:"efficiency"`
	MakespanMS map[string]float64 `json:"makespan_ms"`
	// FromSubmitMS adds job intake and planning: from submit to the last
	// DONE committed, measured by the benchmark.
	FromSubmitMS map[string]float64 `json:"from_submit_ms"`
	IdealMS      map[string]float64 `json:"ideal_ms"`
	Processes    map[string]int     `json:"processes"`
	PerSlot      int                `json:"segments_per_slot"`
}

// RunScaling runs, for each N, N sim slots spread over min(N, 4)
// spool-worker processes (discard encoder), and one independent job of
// N × perSlot 200 ms segments. The makespan runs from the first
// submit to the last segment committed in Postgres; the ideal is the
// engine time the workers report, summed, over N.
func RunScaling(ctx context.Context, o Options) (Scaling, error) {
	ns, perSlot := []int{1, 2, 4, 8, 16, 32, 64}, 20
	if o.Short {
		ns, perSlot = []int{1, 8}, 3
	}
	bin, cleanup, err := workerBinary(ctx, o.WorkerBinary)
	if err != nil {
		return Scaling{}, err
	}
	defer cleanup()
	r, err := setup(ctx, "scaling", 4*ns[len(ns)-1]+16)
	if err != nil {
		return Scaling{}, err
	}
	defer r.close()
	sc := Scaling{Efficiency: map[string]float64{}, MakespanMS: map[string]float64{}, FromSubmitMS: map[string]float64{}, IdealMS: map[string]float64{},
		Processes: map[string]int{}, PerSlot: perSlot}
	doneSoFar := 0
	for _, n := range ns {
		procs := min(n, 4)
		stop, err := r.startProcesses(ctx, bin, n, procs)
		if err != nil {
			return Scaling{}, err
		}
		id := fmt.Sprintf("scale-n%d", n)
		spec := fmt.Sprintf(`{"id":"%s","prompt":"a field of wind turbines","model":"sim","mode":"MODE_INDEPENDENT",`+
			`"durationFrames":%d,"windowFrames":9,"overlapFrames":1,"width":64,"height":64,"steps":10,"fps":24,"pool":"scaling"}`,
			id, 8*n*perSlot+1)
		start := time.Now()
		if err := r.submit(ctx, spec); err != nil {
			stop()
			return Scaling{}, err
		}
		doneSoFar += n * perSlot
		err = r.waitDone(ctx, doneSoFar, 5*time.Minute, id)
		makespan := time.Since(start)
		stop()
		if err != nil {
			return Scaling{}, fmt.Errorf("scaling N=%d: %w", n, err)
		}
		var work time.Duration
		var first, last time.Time
		for i := range n * perSlot {
			at, err := r.store.ListAttempts(ctx, id, i)
			if err != nil || len(at) == 0 {
				return Scaling{}, fmt.Errorf("scaling: attempts of %s/%d: %v", id, i, err)
			}
			a := at[len(at)-1]
			work += time.Duration(a.Timings.DenoiseMS+a.Timings.DecodeMS) * time.Millisecond
			if first.IsZero() || a.QueuedAt.Before(first) {
				first = a.QueuedAt
			}
			if a.FinishedAt != nil && a.FinishedAt.After(last) {
				last = *a.FinishedAt
			}
		}
		// The makespan runs from the first task queued to the last DONE
		// committed, both stamped by Postgres; job intake and planning
		// come before it (the dispatcher's figures measure them).
		submitted := makespan
		makespan = last.Sub(first)
		ideal := work / time.Duration(n)
		k := strconv.Itoa(n)
		sc.Efficiency[k], sc.MakespanMS[k], sc.IdealMS[k], sc.Processes[k] = float64(ideal)/float64(makespan), ms(makespan), ms(ideal), procs
		sc.FromSubmitMS[k] = ms(submitted)
		o.logf("scaling N=%d over %d processes: makespan %v (%v from submit), ideal %v, efficiency %.4f", n, procs, makespan, submitted, ideal, sc.Efficiency[k])
	}
	return sc, nil
}

// startProcesses starts procs spool-worker processes holding n sim slots in
// all, and waits until each has registered. stop sends SIGTERM and waits.
func (r *rig) startProcesses(ctx context.Context, bin string, n, procs int) (stop func(), err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
	}
	ids := map[string]int{}
	for p := range procs {
		slots := n / procs
		if p < n%procs {
			slots++
		}
		id := fmt.Sprintf("scale-%d-%d", n, p)
		c := exec.CommandContext(ctx, bin)
		c.Env = append(append(os.Environ(), r.stack.Env()...), "SPOOL_WORKER_ID="+id, "SPOOL_WORKER_POOL="+r.pool,
			"SPOOL_WORKER_BACKEND=sim", "SPOOL_WORKER_BACKEND_PARAMS=step_ms=20", "SPOOL_WORKER_SLOTS="+strconv.Itoa(slots),
			"SPOOL_WORKER_ENCODER=discard", "SPOOL_LOG_LEVEL=warn", "SPOOL_WORKER_REGISTER_EVERY=200ms")
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("start spool-worker: %w", err)
		}
		cmds = append(cmds, c)
		ids[id] = slots
	}
	kv, err := r.bus.Workers(ctx)
	if err != nil {
		stop()
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for id, slots := range ids {
		for {
			e, err := kv.Get(ctx, id)
			var info spoolv1.WorkerInfo
			if err == nil && proto.Unmarshal(e.Value(), &info) == nil && int(info.Slots) == slots {
				break
			}
			if time.Now().After(deadline) {
				stop()
				return nil, fmt.Errorf("spool-worker %s did not register", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return stop, nil
}

// workerBinary returns bin, or builds cmd/spool-worker into a temporary
// directory from the repository root (the benchmark's working directory).
func workerBinary(ctx context.Context, bin string) (string, func(), error) {
	if bin != "" {
		return bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "spool-worker-bench")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	bin = filepath.Join(dir, "spool-worker")
	pkg := "./services/worker/cmd/spool-worker"
	if _, err := os.Stat(pkg); errors.Is(err, os.ErrNotExist) {
		pkg = "./cmd/spool-worker" // run from services/worker
	}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("build spool-worker: %w\n%s", err, out)
	}
	return bin, cleanup, nil
}
