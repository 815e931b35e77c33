package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/store"
)

// jobsWithin bounds the wait for the last jobs once the monkey has
// stopped.
const jobsWithin = 10 * time.Minute

// Run starts the stack and the fleet, drives the jobs through the monkey's
// faults, checks the outcome and returns the report. The error is for a
// run that could not be carried out (a part that does not start, a fault
// that cannot be undone); failed checks are in the report (Report.OK).
// The stack, the fleet and, when o.Dir is empty and the checks pass, the
// run's directory are gone when it returns.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	if o, err = o.withDefaults(); err != nil {
		return nil, err
	}
	o.Log = &lockedWriter{w: o.Log}
	began := time.Now()
	o.began = began
	rep = &Report{Seed: o.Seed, Short: o.Short, Jobs: o.Jobs, Workers: o.Workers, Started: began, Recovery: recoveryMeasure(),
		Replay: o.replay()}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return rep, fmt.Errorf("chaos: ffmpeg: %w (make deps installs it)", err)
	}
	dir, temp := o.Dir, o.Dir == ""
	if temp {
		if dir, err = os.MkdirTemp("", "spool-chaos-"); err != nil {
			return rep, fmt.Errorf("chaos: %w", err)
		}
		if err := os.Chmod(dir, 0o755); err != nil { // Postgres may run as its own user
			return rep, fmt.Errorf("chaos: %w", err)
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return rep, fmt.Errorf("chaos: %w", err)
	}
	rep.Dir = dir
	o.logf("seed %d; data and logs in %s", o.Seed, dir)
	defer func() {
		rep.Wall = time.Since(began)
		if temp && err == nil && rep.OK() {
			_ = os.RemoveAll(dir)
			return
		}
		// The run's directory stays: the report beside the logs.
		if werr := rep.WriteJSON(filepath.Join(dir, "report.json")); werr != nil {
			o.logf("%v", werr)
		}
	}()
	in, err := makeInputs(ctx, filepath.Join(dir, "media"))
	if err != nil {
		return rep, err
	}
	r, err := startRig(ctx, o, dir)
	if err != nil {
		return rep, err
	}
	defer func() {
		if serr := r.stop(); serr != nil {
			o.logf("stopping: %v", serr)
		}
	}()
	rep.NATSNodes = r.nats.Nodes()
	return rep, r.drive(ctx, o, in, rep)
}

// rig is the running stack, NATS, fleet and this process's clients.
type rig struct {
	stack  *devstack.Stack
	nats   natsNodes
	fleet  *fleet
	bus    *bus.Bus // the admin
	client *bus.Bus // the client role: submits jobs
	// extraSecrets are credentials besides NATS's, MinIO's and the
	// gateway's that no output may show.
	extraSecrets map[string]string
	store        *store.Store
	blob         *blob.Store
	dir          string
}

func startRig(ctx context.Context, o Options, dir string) (r *rig, err error) {
	r = &rig{dir: dir}
	defer func() {
		if err != nil {
			_ = r.stop()
		}
	}()
	o.logf("starting Postgres, MinIO and a cluster of three NATS servers")
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // a first MinIO or nats-server build takes minutes
	defer cancel()
	log := slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var serr, nerr error
	var wg sync.WaitGroup
	wg.Go(func() {
		r.stack, serr = devstack.Start(sctx, devstack.Options{Dir: filepath.Join(dir, "stack"), Postgres: true, MinIO: true, BuildMinIO: true,
			Logger: log})
	})
	wg.Go(func() { r.nats, nerr = startNATS(sctx, dir, log) })
	wg.Wait()
	if err := errors.Join(serr, nerr); err != nil {
		return r, err
	}
	admin := r.nats.NATSConfig() // the suite declares the topology and reads every stream
	admin.Name, admin.Replicas, admin.AckWait = "spool-chaos", natsReplicas, ackWait
	if r.bus, err = bus.Connect(ctx, admin); err != nil {
		return r, err
	}
	// Jobs published over NATS go out as the submit-only client role.
	client, err := r.nats.NATSUser(bus.RoleClient, "", "")
	if err != nil {
		return r, err
	}
	client.Name = "spool-chaos-client"
	if r.client, err = bus.Connect(ctx, client); err != nil {
		return r, err
	}
	if r.store, err = store.Open(ctx, config.Postgres{DSN: config.Secret(r.stack.PGDSN), MaxConns: 4}); err != nil {
		return r, err
	}
	if r.blob, err = blob.New(r.stack.S3Config()); err != nil {
		return r, err
	}
	if r.fleet, err = newFleet(o, dir, r.stack, r.nats); err != nil {
		return r, err
	}
	// The streams, consumers and buckets are declared once before the
	// services start, by the admin: the services' users may not manage
	// streams, and wait for them (bus.Await).
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer dcancel()
	if err := poll(dctx, 2*time.Minute, time.Second, "the streams declared", func(ctx context.Context) error {
		if err := r.bus.Declare(ctx); err != nil {
			return err
		}
		_, err := r.bus.DeclarePool(ctx, pool)
		return err
	}); err != nil {
		return r, err
	}
	o.logf("starting 2 dispatchers, 2 stitchers, the gateway and %d workers", o.Workers)
	err = r.fleet.start(ctx, func(ctx context.Context, worker string) error {
		kv, err := r.workers(ctx)
		if err != nil {
			return err
		}
		_, err = kv.Get(ctx, pool+"."+worker)
		return err
	})
	return r, err
}

func (r *rig) workers(ctx context.Context) (jetstream.KeyValue, error) { return r.bus.Workers(ctx) }

// drive runs the load and the monkey, then checks and reports. A third of
// the jobs go first, at a few segments each; once they have run a while,
// the others follow, sized as they go (loadSizer) to keep the workers busy
// until the monkey is done, which starts after a level window of load.
func (r *rig) drive(ctx context.Context, o Options, in inputs, rep *Report) error {
	if err := in.upload(ctx, r.fleet.gateway, r.fleet.key); err != nil {
		return err
	}
	jobs := planJobs(rand.New(rand.NewPCG(uint64(o.Seed), 1)), o.Seed, o.Jobs, in)
	rep.Load = jobs
	first, rest := jobs[:max(len(jobs)/3, 1)], jobs[max(len(jobs)/3, 1):]
	for _, j := range first {
		j.size(4 + int(3*(j.Weight-0.5)))
	}
	d := &driver{o: o, gateway: r.fleet.gateway, key: r.fleet.key, js: r.client.JetStream(), st: r.store}
	d.submitAll(ctx, first, 0, nil)
	warm := 0
	for _, j := range first {
		warm += j.segments()
	}
	rate, err := r.commitRate(ctx, first, min(2*o.Workers, warm/2))
	if err != nil {
		return err
	}
	churn, faults := schedule(rand.New(rand.NewPCG(uint64(o.Seed), 2)), o.Duration, o.Short)
	span := o.Duration
	if o.Short { // the longer lane, the hang's stall and grace included
		lane := func(steps []step) (d time.Duration) {
			for _, s := range steps {
				d += s.down + shortGap
				if s.kind == FaultEngineHang {
					d += stallAfter + stallGrace
				}
			}
			return d
		}
		span = max(lane(churn), lane(faults))
	}
	// The load should last the level window, the monkey and a fifth more.
	sizer := &loadSizer{st: r.store, initial: rate, workers: o.Workers, until: time.Now().Add(levelWindow + span + span/5)}
	sizer.add(first)
	o.logf("load: %.2f segments/s before any fault; %d more jobs, sized as they go, to last %v of faults",
		rate, len(rest), span.Round(time.Second))
	submitted := make(chan struct{})
	go func() { defer close(submitted); d.submitAll(ctx, rest, span*6/10, sizer) }()
	time.Sleep(levelWindow) // the level the first fault is measured against; not a synchronisation
	k := &monkey{o: o, f: r.fleet, kv: r.workers}
	mctx, cancel := context.WithTimeout(ctx, o.Duration)
	if o.Short {
		mctx, cancel = context.WithCancel(ctx)
	}
	o.logf("monkey: %d faults in two streams of %d and %d", len(faults)+len(churn), len(churn), len(faults))
	mstart := time.Now()
	merr := k.run(mctx, churn, faults, o.Short)
	cancel()
	rep.Monkey = time.Since(mstart)
	o.logf("monkey done after %v; waiting for the jobs", rep.Monkey.Round(time.Second))
	<-submitted
	werr := d.waitAll(ctx, jobs, jobsWithin)
	ls, err := readLineage(ctx, r.store, jobs)
	if err != nil {
		return errors.Join(merr, werr, err)
	}
	var fs []*Fault
	fs, rep.Drains, rep.Hangs = k.report()
	commits, appends, last := times(ls)
	measure(fs, commits, appends, last)
	rep.Commits, rep.Appends = offsets(commits, rep.Started), offsets(appends, rep.Started)
	for _, j := range jobs {
		if l := ls[j.ID]; l.job.FinishedAt != nil {
			j.Finished, j.State = *l.job.FinishedAt, string(l.job.State)
		}
	}
	rep.Faults, rep.Kinds, rep.Retries, rep.AbandonedAtNATS = fs, summarize(fs), retries(ls), abandonedAround(ls, fs)
	o.logf("every job ended; checking the videos against the oracle")
	var subProblems []string
	for _, e := range d.submitErrors() {
		subProblems = append(subProblems, e.Error())
	}
	frames := checkFrames(ctx, filepath.Join(r.dir, "videos"), r.blob, jobs, ls)
	o.logf("videos compared; checking the queues and the registry")
	rep.Checks = []Check{
		verdict("submissions accepted", fmt.Sprintf("%d jobs", len(jobs)), subProblems),
		checkInjected(fs, o.Short),
		checkSucceeded(jobs, ls),
		frames,
		checkTiling(jobs, ls),
		checkCommitted(jobs, ls),
		checkQueues(ctx, r.bus.JetStream()),
		checkRegistry(ctx, r.workers),
		checkDrains(rep.Drains, ls),
		checkHangs(rep.Hangs, ls),
		r.checkSecrets(ctx, jobs),
	}
	rep.Crashes = r.fleet.crashList()
	o.logf("checked")
	return errors.Join(merr, werr)
}

// commitRate waits until jobs have 2n segments committed and returns
// their commit rate from the n-th commit on (past the start-up's ramp), in
// segments per second by Postgres' commit times.
func (r *rig) commitRate(ctx context.Context, jobs []*job, n int) (float64, error) {
	var ts []time.Time
	err := poll(ctx, 3*time.Minute, 250*time.Millisecond, "the first commits", func(ctx context.Context) error {
		ts = ts[:0]
		for _, j := range jobs {
			arts, err := r.store.ListArtifacts(ctx, j.ID)
			if err != nil {
				return err
			}
			for _, a := range arts {
				if a.Kind == store.KindSegment {
					ts = append(ts, a.CreatedAt)
				}
			}
		}
		if len(ts) < 2*n {
			return fmt.Errorf("%d segments done", len(ts))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.SortFunc(ts, time.Time.Compare)
	h, last := len(ts)/2, len(ts)-1
	return float64(last-h) / max(ts[last].Sub(ts[h]).Seconds(), 0.1), nil
}

// stop stops the fleet, this process's clients and the stack.
func (r *rig) stop() error {
	var errs []error
	if r.fleet != nil {
		errs = append(errs, r.fleet.stop())
	}
	if r.bus != nil {
		errs = append(errs, r.bus.Close())
	}
	if r.client != nil {
		errs = append(errs, r.client.Close())
	}
	if r.store != nil {
		r.store.Close()
	}
	if r.nats != nil {
		errs = append(errs, r.nats.Stop())
	}
	if r.stack != nil {
		errs = append(errs, r.stack.Stop())
	}
	return errors.Join(errs...)
}

// lockedWriter serialises the progress lines of the run's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
