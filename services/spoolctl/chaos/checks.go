package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/store"
)

// Check is one verdict of the run.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// verdict is a check from a list of problems: OK when there is none; the
// detail names the first few.
func verdict(name, ok string, problems []string) Check {
	if len(problems) == 0 {
		return Check{Name: name, OK: true, Detail: ok}
	}
	detail := strings.Join(problems[:min(len(problems), 5)], "; ")
	if len(problems) > 5 {
		detail += fmt.Sprintf("; and %d more", len(problems)-5)
	}
	return Check{Name: name, Detail: detail}
}

// checkSucceeded: every job succeeded.
func checkSucceeded(jobs []*job, ls map[string]*lineage) Check {
	var bad []string
	for _, j := range jobs {
		if l := ls[j.ID]; l.job.State != store.JobSucceeded {
			bad = append(bad, fmt.Sprintf("%s %s: %s", j.ID, l.job.State, l.job.ErrorMessage))
		}
	}
	return verdict("every job succeeded", fmt.Sprintf("%d of %d", len(jobs)-len(bad), len(jobs)), bad)
}

// checkTiling: no frame lost or duplicated: every segment appended once,
// in order, the pieces tiling [0, frames) of the final video, which has
// the frames its job planned.
func checkTiling(jobs []*job, ls map[string]*lineage) Check {
	var bad []string
	frames := int64(0)
	for _, j := range jobs {
		l := ls[j.ID]
		if l.job.State != store.JobSucceeded {
			continue
		}
		next := l.job.InputFrames
		for i, p := range l.pieces {
			if p.Index != i || p.FirstFrame != next {
				bad = append(bad, fmt.Sprintf("%s: piece %d is segment %d from frame %d, want segment %d from %d", j.ID, i, p.Index, p.FirstFrame, i, next))
				break
			}
			next += int64(p.Frames)
		}
		if len(l.pieces) != len(l.segments) || next != l.job.FinalFrames || l.job.FinalFrames != l.job.TotalFrames {
			bad = append(bad, fmt.Sprintf("%s: %d pieces of %d segments reach frame %d; final %d frames, planned %d", j.ID, len(l.pieces),
				len(l.segments), next, l.job.FinalFrames, l.job.TotalFrames))
		}
		frames += l.job.FinalFrames
	}
	return verdict("no frame lost or duplicated", fmt.Sprintf("%d frames, each appended once, in order", frames), bad)
}

// checkCommitted: each segment was committed once, by one attempt: its
// committed attempt is the only one done, and the one that stored its
// video.
func checkCommitted(jobs []*job, ls map[string]*lineage) Check {
	var bad []string
	n := 0
	for _, j := range jobs {
		l := ls[j.ID]
		arts := map[int][]int{}
		for _, a := range l.artifacts {
			if a.Index != nil {
				arts[*a.Index] = append(arts[*a.Index], a.Attempt)
			}
		}
		for i, s := range l.segments {
			n++
			var done []int
			for _, a := range l.attempts[i] {
				if a.Outcome == store.OutcomeDone {
					done = append(done, a.Attempt)
				}
			}
			c := s.CommittedAttempt
			if s.State != store.SegDone || c < 1 || !slices.Equal(done, []int{c}) || !slices.Equal(arts[s.Index], []int{c}) {
				bad = append(bad, fmt.Sprintf("%s/%d: %s, committed attempt %d, attempts done %v, videos of attempts %v", j.ID, s.Index,
					s.State, c, done, arts[s.Index]))
			}
		}
	}
	return verdict("each segment one committed attempt", fmt.Sprintf("%d segments", n), bad)
}

// checkQueues: nothing is left in the work queues: the pool's consumer
// has nothing pending or unacknowledged, and SPOOL_JOBS holds nothing.
// Acknowledgements of the last tasks may still be on their way: it polls.
func checkQueues(ctx context.Context, js jetstream.JetStream) Check {
	consumer, _ := bus.PoolConsumer(pool)
	var last string
	err := poll(ctx, time.Minute, 250*time.Millisecond, "empty work queues", func(ctx context.Context) error {
		c, err := js.Consumer(ctx, bus.StreamSegments, consumer)
		if err != nil {
			return err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return err
		}
		s, err := js.Stream(ctx, bus.StreamJobs)
		if err != nil {
			return err
		}
		si, err := s.Info(ctx)
		if err != nil {
			return err
		}
		last = fmt.Sprintf("%s: %d pending, %d unacknowledged; %s: %d messages", consumer, ci.NumPending, ci.NumAckPending,
			bus.StreamJobs, si.State.Msgs)
		if ci.NumPending != 0 || ci.NumAckPending != 0 || si.State.Msgs != 0 {
			return fmt.Errorf("%s", last)
		}
		return nil
	})
	if err != nil {
		return Check{Name: "work queues empty", Detail: err.Error()}
	}
	return Check{Name: "work queues empty", OK: true, Detail: last}
}

// checkRegistry: no worker holds a task. A killed worker's entry lives
// until its TTL: it polls.
func checkRegistry(ctx context.Context, kvOf func(context.Context) (jetstream.KeyValue, error)) Check {
	var holders []string
	n := 0
	err := poll(ctx, 45*time.Second, 250*time.Millisecond, "a registry without tasks", func(ctx context.Context) error {
		kv, err := kvOf(ctx)
		if err != nil {
			return err
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return err
		}
		holders, n = nil, 0
		for k := range keys.Keys() {
			e, err := kv.Get(ctx, k)
			if err != nil {
				continue // expired meanwhile
			}
			n++
			info, err := bus.DecodeWorkerInfo(e.Value())
			if err != nil {
				return fmt.Errorf("worker %s: %w", k, err)
			}
			if ts := info.GetCurrentTasks(); len(ts) > 0 {
				holders = append(holders, k+" holds "+strings.Join(ts, ","))
			}
		}
		if len(holders) > 0 {
			return fmt.Errorf("%s", strings.Join(holders, "; "))
		}
		return nil
	})
	if err != nil {
		return Check{Name: "no worker holds a task", Detail: err.Error()}
	}
	return Check{Name: "no worker holds a task", OK: true, Detail: fmt.Sprintf("%d workers registered, none holding a task", n)}
}

// drainSlack is how much longer than its drain timeout a drained worker
// may take to exit: its segment's upload and DONE, the deregistration.
const drainSlack = 20 * time.Second

// checkDrains: each drained worker exited 0 within its drain timeout and
// drainSlack, settling every segment it held: finished, handed back
// (RETURNED, which is not counted), or failed for a reason of its own
// (its conditioning tail never came, a dependency was down); none was
// left for the ack wait to find abandoned. It fills in the drains'
// outcomes.
func checkDrains(drains []*Drain, ls map[string]*lineage) Check {
	var bad []string
	for _, d := range drains {
		d.Outcomes = nil
		for _, t := range d.Held {
			a, ok := attemptOf(ls, t)
			switch {
			case !ok:
				d.Outcomes = append(d.Outcomes, "not found")
			case a.Outcome == store.OutcomeDone || a.Outcome == store.OutcomeDuplicate:
				d.Outcomes = append(d.Outcomes, "finished")
			case retryClass(a) == "returned":
				d.Outcomes = append(d.Outcomes, "handed back")
			default:
				d.Outcomes = append(d.Outcomes, fmt.Sprintf("%s (%s)", a.Outcome, retryClass(a)))
			}
			if o := d.Outcomes[len(d.Outcomes)-1]; o == "not found" || strings.Contains(o, "(abandoned)") {
				bad = append(bad, fmt.Sprintf("%s: %s %s", d.Worker, t, o))
			}
		}
		if d.Exit != "0" || d.Took > d.Timeout+drainSlack {
			bad = append(bad, fmt.Sprintf("%s exited %s %v after SIGTERM (drain timeout %v)", d.Worker, d.Exit, d.Took.Round(time.Millisecond), d.Timeout))
		}
	}
	return verdict("drains finish or hand back", fmt.Sprintf("%d drains", len(drains)), bad)
}

// checkHangs: each hung engine was caught by its worker's stall watchdog:
// the worker exited 75, which it does only after a stall verdict whose
// cancel its engine ignored. Its attempt ended STALLED, or ABANDONED when
// its task was delivered again to another worker first (a NATS node's
// fault moves the consumer's leader, which may redeliver a task held
// longer than the ack wait while its worker still heartbeats); never done.
func checkHangs(hangs []*Hang, ls map[string]*lineage) Check {
	var bad []string
	for _, h := range hangs {
		a, ok := attemptOf(ls, h.Task)
		if ok {
			h.Outcome = retryClass(a)
		}
		if (h.Outcome != "stalled" && h.Outcome != "abandoned") || h.Exit != "exit status 75" {
			bad = append(bad, fmt.Sprintf("%s: attempt %s %q, process %s; want stalled (or abandoned) and exit status 75", h.Worker, h.Task,
				h.Outcome, h.Exit))
		}
	}
	return verdict("hung engines caught", fmt.Sprintf("%d caught, their workers exited 75", len(hangs)), bad)
}

// checkInjected: every fault was injected and undone, and in the short
// form every kind was.
func checkInjected(faults []*Fault, short bool) Check {
	var bad []string
	kinds := map[string]bool{}
	for _, ft := range faults {
		kinds[ft.Kind] = true
		if ft.Err != "" {
			bad = append(bad, fmt.Sprintf("fault %d %s: %s", ft.ID, ft.Kind, ft.Err))
		}
	}
	for _, k := range FaultKinds {
		if short && !kinds[k] {
			bad = append(bad, k+" never injected")
		}
	}
	return verdict("faults injected", fmt.Sprintf("%d faults of %d kinds", len(faults), len(kinds)), bad)
}
