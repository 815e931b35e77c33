package workerbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Scaling is the "scaling" object of bench/results.json: per slot count N,
// makespan ÷ (Σ engine time ÷ N), inverted so that 1 is perfect. Every map
// is keyed by N.
type Scaling struct {
	Efficiency map[string]float64 `json:"efficiency"`
	MakespanMS map[string]float64 `json:"makespan_ms"`
	// FromSubmitMS adds job intake and planning: from submit to the last
	// DONE committed, measured by the benchmark.
	FromSubmitMS map[string]float64 `json:"from_submit_ms"`
	IdealMS      map[string]float64 `json:"ideal_ms"`
	Processes    map[string]int     `json:"processes"`
	// SegmentMS is the sim's denoising per segment (labelled): 200 ms up
	// to 64 slots, 2 s above, where 200 ms would ask 5,120 segments/s of
	// the control plane at 1,024 slots.
	SegmentMS map[string]float64 `json:"segment_ms"`
	PerSlot   map[string]int     `json:"segments_per_slot"`
	// RampMS is the time from the first task queued to the N-th segment's
	// engine start (as Postgres has it: its DONE's commit less its
	// timings): until every slot had work.
	RampMS map[string]float64 `json:"ramp_ms"`
	// IdleMS is a slot's time outside the engine per segment, on average:
	// (N × makespan − Σ engine time) ÷ segments. The ramp, the fetches and
	// the DONE round trips are in it.
	IdleMS map[string]float64 `json:"idle_ms_per_segment"`
	// GapMS is a slot's time between two segments once the ramp is over:
	// (makespan − ramp) ÷ segments per slot − engine time per segment. It
	// is mostly the fetch's round trip, which the worker hides behind the
	// last denoising step only for short steps (SPOOL_WORKER_PREFETCH).
	GapMS map[string]float64 `json:"gap_ms"`
	// CPU is where the machine's CPUs went during each run.
	CPU map[string]ScalingCPU `json:"cpu"`
	// Rejected counts the slots' fetches that NATS refused because the
	// pool's consumer already had its MaxWaiting (512) pull requests
	// waiting: an idle slot asks again 200 ms later.
	Rejected map[string]int `json:"fetches_rejected"`
}

// scalePoint is one run: n sim slots over procs spool-worker processes,
// perSlot segments of segment each.
type scalePoint struct {
	n, procs, perSlot int
	segment           time.Duration
}

// scalePoints are the runs: 1 to 64 slots over min(N, 4) processes with
// 200 ms segments, then 128 to 1,024 over processes of at most 128 slots
// (8 at 1,024) with 2 s segments, which keep the control plane's rate at
// 1,024 slots (512 segments/s) near 64 slots' (320/s).
func scalePoints(short bool) []scalePoint {
	if short {
		return []scalePoint{{1, 1, 3, 200 * time.Millisecond}, {8, 4, 3, 200 * time.Millisecond}, {64, 8, 2, 2 * time.Second}}
	}
	var ps []scalePoint
	for _, n := range []int{1, 2, 4, 8, 16, 32, 64} {
		ps = append(ps, scalePoint{n, min(n, 4), 20, 200 * time.Millisecond})
	}
	for _, n := range []int{128, 256, 512, 1024} {
		ps = append(ps, scalePoint{n, max(4, n/128), 20, 2 * time.Second})
	}
	return ps
}

// RunScaling runs, for each point, its slots in spool-worker processes
// (sim backend, discard encoder) against a spool-dispatcher process
// admitting 4 × N + 16 segments at once, and one independent job of N ×
// perSlot segments. The makespan runs from the
// first task queued to the last segment committed, both stamped by
// Postgres; the ideal is the engine time the workers report, summed, over
// N. Each process's CPU is read from /proc over the run.
func RunScaling(ctx context.Context, o Options) (Scaling, error) {
	points := scalePoints(o.Short)
	if len(o.Slots) > 0 {
		points = slices.DeleteFunc(points, func(p scalePoint) bool { return !slices.Contains(o.Slots, p.n) })
		if len(points) == 0 {
			return Scaling{}, fmt.Errorf("scaling: no run of %v slots", o.Slots)
		}
	}
	bins, cleanup, err := binaries(ctx, o.BinDir)
	if err != nil {
		return Scaling{}, err
	}
	defer cleanup()
	r, err := setupStack(ctx, "scaling")
	if err != nil {
		return Scaling{}, err
	}
	defer r.close()
	sc := Scaling{Efficiency: map[string]float64{}, MakespanMS: map[string]float64{}, FromSubmitMS: map[string]float64{},
		IdealMS: map[string]float64{}, Processes: map[string]int{}, SegmentMS: map[string]float64{}, PerSlot: map[string]int{},
		RampMS: map[string]float64{}, IdleMS: map[string]float64{}, GapMS: map[string]float64{}, CPU: map[string]ScalingCPU{}, Rejected: map[string]int{}}
	for _, p := range points {
		k := strconv.Itoa(p.n)
		disp, err := r.startDispatcher(ctx, bins, 4*p.n+16)
		if err != nil {
			return Scaling{}, err
		}
		workers, err := r.startWorkers(ctx, bins, p)
		if err != nil {
			_ = disp.Stop(syscall.SIGTERM)
			return Scaling{}, err
		}
		pids := cpuPIDs{dispatcher: disp.Pid(), postmaster: r.stack.PostgresPID()}
		for _, w := range workers {
			pids.workers = append(pids.workers, w.Pid())
		}
		id := fmt.Sprintf("scale-n%d", p.n)
		total := p.n * p.perSlot
		spec := fmt.Sprintf(`{"id":"%s","prompt":"a field of wind turbines","model":"sim","mode":"MODE_INDEPENDENT",`+
			`"durationFrames":%d,"windowFrames":9,"overlapFrames":1,"width":64,"height":64,"steps":10,"fps":24,"pool":"scaling"}`,
			id, 8*total+1)
		m0, err := r.markCPU(ctx, pids)
		if err == nil {
			err = r.submit(ctx, spec)
		}
		if err == nil {
			err = r.waitJobDone(ctx, id, total, 10*time.Minute, disp)
		}
		var m1 cpuMark
		if err == nil {
			m1, err = r.markCPU(ctx, pids)
		}
		stopAll(append(workers, disp))
		if err != nil {
			return Scaling{}, fmt.Errorf("scaling N=%d: %w", p.n, err)
		}
		for _, w := range workers {
			sc.Rejected[k] += countInLog(w.LogPath(), "Exceeded MaxWaiting")
		}
		run, err := r.scaleRun(ctx, id, p)
		if err != nil {
			return Scaling{}, err
		}
		cpu := cpuBetween(m0, m1)
		cpu.SegmentsPerS = float64(total) / run.makespan.Seconds()
		sc.Efficiency[k], sc.MakespanMS[k], sc.IdealMS[k] = float64(run.ideal)/float64(run.makespan), ms(run.makespan), ms(run.ideal)
		sc.FromSubmitMS[k], sc.Processes[k], sc.SegmentMS[k], sc.PerSlot[k] = ms(m1.at.Sub(m0.at)), p.procs, ms(p.segment), p.perSlot
		sc.RampMS[k], sc.IdleMS[k], sc.GapMS[k], sc.CPU[k] = ms(run.ramp), ms(run.idle), ms(run.gap), cpu
		o.logf("scaling N=%d over %d processes, %v segments: makespan %v (%v from submit), ideal %v, efficiency %.4f, ramp %v, idle/segment %v, gap %v\n  %s",
			p.n, p.procs, p.segment, run.makespan, m1.at.Sub(m0.at), run.ideal, sc.Efficiency[k], run.ramp, run.idle, run.gap, cpuSummary(cpu))
		o.logf("  %s; %d fetches rejected (MaxWaiting)", run.detail, sc.Rejected[k])
	}
	return sc, nil
}

// scaleRun is what a run's attempts say.
type scaleRun struct {
	makespan, ideal, ramp, idle, gap time.Duration
	detail                           string
}

// scaleRun reads a finished run's attempts: its makespan, from the first
// task queued to the last DONE committed (Postgres's stamps; job intake and
// planning come before it), the ideal, the ramp and each slot's idle time
// per segment.
func (r *rig) scaleRun(ctx context.Context, id string, p scalePoint) (scaleRun, error) {
	atts, err := r.store.ListJobAttempts(ctx, id)
	if err != nil {
		return scaleRun{}, err
	}
	total := p.n * p.perSlot
	var work time.Duration
	var first, last time.Time
	var starts []time.Time
	segs := map[int]bool{}
	for _, a := range atts {
		if a.Outcome != store.OutcomeDone {
			continue // a retry's work is not in Σ work; its time is in the makespan
		}
		segs[a.Index] = true
		work += time.Duration(a.Timings.DenoiseMS+a.Timings.DecodeMS) * time.Millisecond
		if a.StartedAt != nil {
			starts = append(starts, *a.StartedAt)
		}
		if a.FinishedAt != nil && a.FinishedAt.After(last) {
			last = *a.FinishedAt
		}
	}
	for _, a := range atts {
		if first.IsZero() || a.QueuedAt.Before(first) {
			first = a.QueuedAt
		}
	}
	if len(segs) != total || first.IsZero() || !last.After(first) {
		return scaleRun{}, fmt.Errorf("scaling: %s: %d of %d segments done in its attempts", id, len(segs), total)
	}
	run := scaleRun{makespan: last.Sub(first), ideal: work / time.Duration(p.n)}
	if slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) }); len(starts) >= p.n {
		run.ramp = starts[p.n-1].Sub(first)
	}
	run.idle = (time.Duration(p.n)*run.makespan - work) / time.Duration(total)
	// The last slot to start may finish early: with few segments per slot
	// the estimate can fall below 0, which says only that the gap was small.
	run.gap = max((run.makespan-run.ramp)/time.Duration(p.perSlot)-work/time.Duration(total), 0)
	if len(starts) >= p.n {
		var queued []time.Time
		var qms []int
		for _, a := range atts {
			queued = append(queued, a.QueuedAt)
			qms = append(qms, a.Timings.QueueMS)
		}
		slices.SortFunc(queued, func(a, b time.Time) int { return a.Compare(b) })
		q := func(f float64) time.Duration { return starts[int(f*float64(p.n-1))].Sub(first) }
		qq := func(f float64) time.Duration { return queued[int(f*float64(min(len(queued), 4*p.n+16)-1))].Sub(first) }
		run.detail = fmt.Sprintf("first wave started at +%v/+%v/+%v/+%v (10/50/90/100%%); window queued at +%v/+%v/+%v",
			q(0.1), q(0.5), q(0.9), q(1), qq(0.1), qq(0.5), qq(1))
	}
	return run, nil
}

// waitJobDone waits until the job has n segments done, reading its one row
// every 20 ms (the makespan is Postgres's, so the polling only ends the
// wait), failing when the job ends badly, the dispatcher exits, or after
// limit.
func (r *rig) waitJobDone(ctx context.Context, id string, n int, limit time.Duration, disp *devstack.Service) error {
	deadline := time.Now().Add(limit)
	for {
		j, err := r.store.GetJob(ctx, id)
		switch {
		case err == nil && j.SegmentsDone >= n:
			return nil
		case err == nil && j.State.Terminal() && j.State != store.JobSucceeded:
			return fmt.Errorf("job %s %s: %s", id, j.State, j.ErrorMessage)
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := disp.Exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s: %d of %d segments done after %v", id, j.SegmentsDone, n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startDispatcher starts a spool-dispatcher process feeding the rig's pool,
// admitting window segments at once, and waits until it asks for
// submissions.
func (r *rig) startDispatcher(ctx context.Context, bins scaleBinaries, window int) (*devstack.Service, error) {
	env, err := r.stack.ServiceEnv(bus.RoleDispatcher, "", "")
	if err != nil {
		return nil, err
	}
	env = append(env, "SPOOL_DISPATCHER_POOLS="+r.pool+":ref,sim", "SPOOL_DISPATCHER_POOL_WINDOW="+strconv.Itoa(window),
		"SPOOL_DISPATCHER_RECONCILE_EVERY=1h", "SPOOL_DISPATCHER_RUNNING_STALE=1h", "SPOOL_DISPATCHER_QUEUED_STALE=1h",
		"SPOOL_DISPATCHER_SEGMENT_DEADLINE=1h", "SPOOL_DISPATCHER_RETRY_BACKOFF=1s", "SPOOL_RETENTION_INTERVAL=0",
		"SPOOL_PG_MAX_CONNS=16", "SPOOL_LOG_LEVEL=warn")
	d, err := devstack.StartService("spool-dispatcher", bins.dispatcher, nil, env, filepath.Join(r.stack.Dir(), "dispatcher.log"))
	if err != nil {
		return nil, err
	}
	c, err := r.bus.Consumer(ctx, bus.StreamJobs, bus.ConsumerDispatcher)
	if err != nil {
		_ = d.Stop(syscall.SIGTERM)
		return nil, err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		info, err := c.Info(ctx)
		if err == nil && info.NumWaiting > 0 {
			return d, nil
		}
		last := err
		if err := d.Exited(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			_ = d.Stop(syscall.SIGTERM)
			return nil, fmt.Errorf("spool-dispatcher did not ask for submissions within a minute (consumer info: %v)", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWorkers starts p.procs spool-worker processes holding p.n sim slots
// in all, and waits until each has registered.
func (r *rig) startWorkers(ctx context.Context, bins scaleBinaries, p scalePoint) ([]*devstack.Service, error) {
	var ws []*devstack.Service
	ids := map[string]int{}
	stepMS := strconv.FormatInt(p.segment.Milliseconds()/10, 10) // the spec's 10 steps
	for i := range p.procs {
		slots := p.n / p.procs
		if i < p.n%p.procs {
			slots++
		}
		id := fmt.Sprintf("scale-%d-%d", p.n, i)
		env, err := r.stack.ServiceEnv(bus.RoleWorker, r.pool, "")
		if err != nil {
			return nil, err
		}
		env = append(env, "SPOOL_WORKER_ID="+id, "SPOOL_WORKER_POOL="+r.pool,
			"SPOOL_WORKER_BACKEND=sim", "SPOOL_WORKER_BACKEND_PARAMS=step_ms="+stepMS, "SPOOL_WORKER_SLOTS="+strconv.Itoa(slots),
			"SPOOL_WORKER_ENCODER=discard", "SPOOL_LOG_LEVEL=warn", "SPOOL_WORKER_REGISTER_EVERY=200ms")
		w, err := devstack.StartService(id, bins.worker, nil, env, filepath.Join(r.stack.Dir(), id+".log"))
		if err != nil {
			stopAll(ws)
			return nil, err
		}
		ws = append(ws, w)
		ids[id] = slots
	}
	kv, err := r.bus.Workers(ctx)
	if err != nil {
		stopAll(ws)
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for i := range p.procs {
		id := fmt.Sprintf("scale-%d-%d", p.n, i)
		for {
			e, err := kv.Get(ctx, r.pool+"."+id)
			var info spoolv1.WorkerInfo
			if err == nil && proto.Unmarshal(e.Value(), &info) == nil && int(info.Slots) == ids[id] {
				break
			}
			if err := ws[i].Exited(); err != nil {
				stopAll(ws)
				return nil, err
			}
			if time.Now().After(deadline) {
				stopAll(ws)
				return nil, fmt.Errorf("spool-worker %s did not register", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return ws, nil
}

// countInLog counts the lines of a service's log that hold s.
func countInLog(path, s string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte(s))
}

// stopAll sends each service SIGTERM (a worker drains), then waits for
// each, killing one that outlasts 15 s.
func stopAll(ss []*devstack.Service) {
	for _, s := range ss {
		_ = s.Signal(syscall.SIGTERM)
	}
	for _, s := range ss {
		_ = s.Stop(syscall.SIGTERM)
	}
}

// scaleBinaries are the programs the scaling run starts.
type scaleBinaries struct {
	worker, dispatcher string
}

// binaries returns spool-worker and spool-dispatcher from dir, or builds
// them into a temporary directory from the repository root (the
// benchmark's working directory) or services/worker.
func binaries(ctx context.Context, dir string) (scaleBinaries, func(), error) {
	if dir != "" {
		b := scaleBinaries{worker: filepath.Join(dir, "spool-worker"), dispatcher: filepath.Join(dir, "spool-dispatcher")}
		for _, p := range []string{b.worker, b.dispatcher} {
			if _, err := os.Stat(p); err != nil {
				return scaleBinaries{}, nil, fmt.Errorf("scaling: %w (run `make build`)", err)
			}
		}
		return b, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "spool-scaling-bench")
	if err != nil {
		return scaleBinaries{}, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	root := "."
	if _, err := os.Stat("./services/worker/cmd/spool-worker"); errors.Is(err, os.ErrNotExist) {
		root = "../.." // run from services/worker
	}
	b := scaleBinaries{worker: filepath.Join(tmp, "spool-worker"), dispatcher: filepath.Join(tmp, "spool-dispatcher")}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp+"/", "./services/worker/cmd/spool-worker", "./services/dispatcher/cmd/spool-dispatcher")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return scaleBinaries{}, nil, fmt.Errorf("build spool-worker and spool-dispatcher: %w\n%s", err, out)
	}
	return b, cleanup, nil
}
