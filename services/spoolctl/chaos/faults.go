package chaos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
)

// Drain is a worker sent SIGTERM: each segment it held must finish within
// its drain timeout or be handed back (RETURNED, uncounted), and the
// process must exit 0.
type Drain struct {
	Worker  string        `json:"worker"`
	Timeout time.Duration `json:"timeout_ns"`
	Held    []string      `json:"held"` // job/segment/attempt at the SIGTERM
	Exit    string        `json:"exit"` // "0", or how it ended
	Took    time.Duration `json:"took_ns"`
	// Outcomes of the held attempts, from Postgres after the run:
	// "finished", "handed back", or what else became of them.
	Outcomes []string `json:"outcomes"`
}

// Hang is a worker whose engine hung: its attempt must end STALLED and the
// process exit 75 (its engine did not return after the cancel).
type Hang struct {
	Worker  string `json:"worker"`
	Task    string `json:"task"` // the attempt it hung in
	Exit    string `json:"exit"`
	Outcome string `json:"outcome"` // the attempt's error class, from Postgres
}

// restoreTimeout bounds bringing a process or dependency back.
const restoreTimeout = 2 * time.Minute

// pick chooses one of n by the step's draw.
func (s step) choose(n int) int { return int(s.pick % uint64(n)) }

// victim is a plain worker chosen by the step among those no other fault
// holds, marked busy, with the tasks it holds.
func (k *monkey) victim(ctx context.Context, s step) (*member, []string, error) {
	var ws []*member
	for _, m := range k.f.live(roleWorker, true) {
		if !m.busy.Load() {
			ws = append(ws, m)
		}
	}
	for len(ws) > 0 {
		i := s.choose(len(ws))
		if m := ws[i]; m.busy.CompareAndSwap(false, true) {
			return m, k.held(ctx, m.name), nil
		}
		ws = append(ws[:i], ws[i+1:]...)
	}
	return nil, nil, errors.New("no worker alive that no other fault holds")
}

// held reads the tasks a worker lists in the registry; none when it cannot
// be read (NATS may be the next fault's victim).
func (k *monkey) held(ctx context.Context, worker string) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	kv, err := k.kv(ctx)
	if err != nil {
		return nil
	}
	e, err := kv.Get(ctx, pool+"."+worker)
	if err != nil {
		return nil
	}
	info, err := bus.DecodeWorkerInfo(e.Value())
	if err != nil {
		return nil
	}
	return info.GetCurrentTasks()
}

func heldNote(tasks []string) string {
	if len(tasks) == 0 {
		return "holding nothing"
	}
	return "holding " + strings.Join(tasks, ",")
}

func (k *monkey) workerKill(ctx context.Context, s step) (*Fault, error) {
	m, held, err := k.victim(ctx, s)
	if err != nil {
		return nil, err
	}
	ft := k.record(s.kind, m.name)
	ft.Note = heldNote(held)
	if err := k.f.kill(m); err != nil {
		return ft, err
	}
	_, err = k.f.startWorker(nil, false)
	return ft, err
}

func (k *monkey) workerDrain(ctx context.Context, s step) (*Fault, error) {
	m, held, err := k.victim(ctx, s)
	if err != nil {
		return nil, err
	}
	ft := k.record(s.kind, m.name)
	ft.Note = heldNote(held)
	m.ending.Store(true)
	d := &Drain{Worker: m.name, Timeout: m.drain, Held: held}
	k.mu.Lock()
	k.drains = append(k.drains, d)
	k.mu.Unlock()
	if err := m.svc.Signal(syscall.SIGTERM); err != nil {
		return ft, err
	}
	k.awaitExit(m, d.Timeout+time.Minute, func(exit string) { d.Took, d.Exit = time.Since(ft.At), exit })
	_, err = k.f.startWorker(nil, false)
	return ft, err
}

func (k *monkey) workerFreeze(ctx context.Context, s step) (*Fault, error) {
	m, held, err := k.victim(ctx, s)
	if err != nil {
		return nil, err
	}
	ft := k.record(s.kind, m.name)
	ft.Note = fmt.Sprintf("%s, frozen %v", heldNote(held), s.down.Round(100*time.Millisecond))
	if err := signalGroup(m, syscall.SIGSTOP); err != nil {
		return ft, err
	}
	sleep(s.down)
	err = signalGroup(m, syscall.SIGCONT)
	ft.Back = time.Now()
	m.busy.Store(false)
	return ft, err
}

// hangParams make every denoise step 1 of the worker's engine hang, deaf
// to cancel: a wedged device call.
const hangParams = "hang_at_step=1;hang_ignores_cancel=1"

func (k *monkey) engineHang(ctx context.Context, s step) (*Fault, error) {
	m, err := k.f.startWorker([]string{"SPOOL_WORKER_BACKEND_PARAMS=" + hangParams}, true)
	if err != nil {
		return nil, err
	}
	m.ending.Store(true) // it is to exit by itself, 75
	h := &Hang{Worker: m.name}
	k.mu.Lock()
	k.hangs = append(k.hangs, h)
	k.mu.Unlock()
	// The fault starts when its engine takes a task.
	var task []string
	err = poll(ctx, time.Minute, 50*time.Millisecond, m.name+" to take a task", func(ctx context.Context) error {
		if task = k.held(ctx, m.name); len(task) == 0 {
			select {
			case <-m.svc.Done():
				return errors.Join(errors.New("exited before it took a task"), m.svc.ExitErr())
			default:
			}
			return errors.New("holds nothing")
		}
		return nil
	})
	ft := k.record(s.kind, m.name)
	ft.Note = heldNote(task)
	if err != nil {
		_ = m.svc.Kill()
		return ft, err
	}
	h.Task = task[0]
	k.awaitExit(m, stallAfter+stallGrace+time.Minute, func(exit string) { h.Exit = exit })
	return ft, nil
}

// awaitExit waits in the background, up to within, for m to exit, and
// hands done how it ended (under the monkey's lock); one still running
// then is killed.
func (k *monkey) awaitExit(m *member, within time.Duration, done func(exit string)) {
	k.bg.Add(1)
	go func() {
		defer k.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		exit := exitText(m.svc.Wait(ctx))
		if ctx.Err() != nil {
			exit = "still running after " + within.String()
			_ = m.svc.Kill()
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		done(exit)
	}()
}

// serviceKill kills one of the two dispatchers or stitchers and, after the
// step's downtime, starts it again: the dispatcher under its name, the
// stitcher as a new one (its lease is another's, as a new pod's is).
func (k *monkey) serviceKill(ctx context.Context, s step) (*Fault, error) {
	r := roleDispatcher
	if s.kind == FaultStitcher {
		r = roleStitcher
	}
	ms := k.f.live(r, false)
	if len(ms) == 0 {
		return nil, fmt.Errorf("no %s alive", r)
	}
	m := ms[s.choose(len(ms))]
	ft := k.record(s.kind, m.name)
	ft.Note = fmt.Sprintf("down %v", s.down.Round(100*time.Millisecond))
	if err := k.f.kill(m); err != nil {
		return ft, err
	}
	sleep(s.down)
	var err error
	if r == roleDispatcher {
		_, err = k.f.launch(&member{name: m.name, role: r, env: m.env})
	} else {
		var n *member
		if n, err = k.f.startRole(r, nil); n != nil {
			ft.Note += ", then " + n.name
		}
	}
	ft.Back = time.Now()
	return ft, err
}

// natsNode kills one NATS node, wipes its store for the wipe fault, and
// restarts it after the step's downtime; recovery counts from its return.
func (k *monkey) natsNode(ctx context.Context, s step) (*Fault, error) {
	n := k.f.nats
	i := s.choose(n.Nodes())
	ft := k.record(s.kind, n.Name(i))
	ft.Note = fmt.Sprintf("down %v", s.down.Round(100*time.Millisecond))
	if err := n.Kill(i); err != nil {
		return ft, err
	}
	if s.kind == FaultNATSWipe {
		if err := n.Wipe(i); err != nil {
			return ft, err
		}
		ft.Note += ", store wiped"
	}
	sleep(s.down)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	err := n.Restart(rctx, i)
	ft.Back = time.Now()
	ft.Anchor = ft.Back
	ft.Note += fmt.Sprintf(", back after %v", ft.Back.Sub(ft.At).Round(100*time.Millisecond))
	return ft, err
}

// storeRestart stops Postgres with a fast shutdown (a SIGKILL could lose
// the test cluster's last commits: it runs without synchronous commit) or
// kills MinIO, and restarts it on the same address and data after the
// step's downtime; recovery counts from its return.
func (k *monkey) storeRestart(ctx context.Context, s step) (*Fault, error) {
	part, stop := devstack.PartMinIO, k.f.stack.Kill
	if s.kind == FaultPostgres {
		part, stop = devstack.PartPostgres, k.f.stack.StopFast
	}
	ft := k.record(s.kind, part)
	ft.Note = fmt.Sprintf("down %v", s.down.Round(100*time.Millisecond))
	if err := stop(part); err != nil {
		return ft, err
	}
	sleep(s.down)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	err := k.f.stack.Restart(rctx, part)
	ft.Back = time.Now()
	ft.Anchor = ft.Back
	ft.Note += fmt.Sprintf(", back after %v", ft.Back.Sub(ft.At).Round(100*time.Millisecond))
	return ft, err
}

// sleep waits d: a fault's downtime, which the schedule chose; the end of
// the run does not cut it short, so that what was taken away comes back.
func sleep(d time.Duration) { time.Sleep(d) }

// exitText says how a process ended: "0", "exit status 75", "signal: killed".
func exitText(err error) string {
	if err == nil {
		return "0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}
