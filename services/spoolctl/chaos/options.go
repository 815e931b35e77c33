package chaos

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Options size and seed a run. The zero value of a field means its default.
type Options struct {
	// Seed drives every random choice of the run: the jobs (kinds, sizes,
	// routes), the monkey's schedule (kinds, order, targets, downtimes) and
	// the workers' drain timeouts. The same seed replays the same run, up
	// to the timing of the processes. 0 picks one from the clock; the
	// report names it.
	Seed int64
	// Jobs is how many jobs the driver submits: 50, or 16 in the short
	// form.
	Jobs int
	// Duration bounds the monkey: faults start within it (4 minutes). The
	// short form injects one fault of each kind instead, in two streams of
	// one fault after the other, and ignores it.
	Duration time.Duration
	// Workers is how many worker processes the fleet keeps running (4);
	// each has one CPU slot.
	Workers int
	// Short is the form run by `go test`: fewer, smaller jobs and one fault
	// of each kind.
	Short bool
	// Bin is the directory of spool-dispatcher, spool-stitcher,
	// spool-gateway and spool-worker (`make build` writes them to bin/).
	Bin string
	// Dir holds the parts' data and every process's log. Empty: a new
	// temporary directory, removed after a run whose checks pass.
	Dir string
	// Log receives progress lines, each with the time since the run
	// began; nil discards them.
	Log io.Writer

	began time.Time
}

// Defaults of Options.
const (
	DefaultJobs      = 50
	DefaultShortJobs = 16
	DefaultDuration  = 4 * time.Minute
	DefaultWorkers   = 4
)

// withDefaults fills the zero fields and checks the others.
func (o Options) withDefaults() (Options, error) {
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano() % 1_000_000_000
	}
	if o.Jobs == 0 {
		o.Jobs = DefaultJobs
		if o.Short {
			o.Jobs = DefaultShortJobs
		}
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	var errs []error
	if o.Jobs < 5 || o.Jobs > 1000 {
		errs = append(errs, fmt.Errorf("chaos: jobs %d: want 5..1000 (one of each kind at least)", o.Jobs))
	}
	if o.Workers < 2 || o.Workers > 32 {
		errs = append(errs, fmt.Errorf("chaos: workers %d: want 2..32 (a killed worker's segment needs another)", o.Workers))
	}
	if o.Duration < 30*time.Second {
		errs = append(errs, fmt.Errorf("chaos: duration %v: want at least 30s", o.Duration))
	}
	if o.Bin == "" {
		errs = append(errs, errors.New("chaos: no directory of the service binaries (make build writes them to bin/)"))
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o, errors.Join(errs...)
}

// replay is the command that runs o again: the same seed and sizes.
func (o Options) replay() string {
	if o.Short && o.Jobs == DefaultShortJobs && o.Workers == DefaultWorkers {
		return fmt.Sprintf("SPOOL_CHAOS_SEED=%d go test ./services/spoolctl/chaos -run Short", o.Seed)
	}
	var flags []string
	if o.Short {
		flags = append(flags, "-short")
	}
	if o.Jobs != DefaultJobs && !o.Short || o.Short && o.Jobs != DefaultShortJobs {
		flags = append(flags, fmt.Sprintf("-jobs %d", o.Jobs))
	}
	if o.Duration != DefaultDuration && !o.Short {
		flags = append(flags, "-duration "+o.Duration.String())
	}
	if o.Workers != DefaultWorkers {
		flags = append(flags, fmt.Sprintf("-workers %d", o.Workers))
	}
	cmd := fmt.Sprintf("make chaos SEED=%d", o.Seed)
	if len(flags) > 0 {
		cmd += fmt.Sprintf(" CHAOS_FLAGS='%s'", strings.Join(flags, " "))
	}
	return cmd
}

func (o Options) logf(format string, args ...any) {
	fmt.Fprintf(o.Log, "chaos: %5.1fs "+format+"\n", append([]any{time.Since(o.began).Seconds()}, args...)...)
}
