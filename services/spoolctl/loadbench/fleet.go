package loadbench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
)

// pool is the one pool of the run: the sim model's, served by one worker.
const pool = "load"

// fleet is the four services as child processes (bin/spool-*) against a
// devstack, with the peak RSS of each sampled while the load runs.
type fleet struct {
	svcs    []*devstack.Service
	gateway string // base URL
	key     string // the gateway's bootstrap admin key, which the poller sends
	mu      sync.Mutex
	maxRSS  map[string]int64 // the largest VmRSS sampled, bytes
	loads   []float64        // the machine's 1-minute load average, sampled
}

// startFleet starts the dispatcher, the stitcher, the gateway and a worker
// of o.Slots sim slots from o.BinDir, their logs in dir, and waits until
// each is serving: the gateway answers /health and the dispatcher, the
// stitcher and the worker each wait on their consumer.
func startFleet(ctx context.Context, st *devstack.Stack, b *bus.Bus, o Options, dir string) (*fleet, error) {
	port, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	key, _, err := apikey.Mint("")
	if err != nil {
		return nil, fmt.Errorf("loadbench: %w", err)
	}
	specs := []struct {
		name string
		env  []string
	}{
		{"dispatcher", []string{"SPOOL_DISPATCHER_POOLS=" + pool + ":sim"}},
		{"stitcher", []string{"SPOOL_STITCHER_ID=load"}},
		{"gateway", []string{"SPOOL_GATEWAY_ADDR=127.0.0.1:" + strconv.Itoa(port), "SPOOL_GATEWAY_ADMIN_KEY=" + key,
			"SPOOL_GATEWAY_URL_KEY=" + apikey.NewSecret(),
			"SPOOL_GATEWAY_POOLS=" + pool + ":sim"}},
		{"worker", []string{"SPOOL_WORKER_ID=load", "SPOOL_WORKER_POOL=" + pool, "SPOOL_WORKER_BACKEND=sim",
			"SPOOL_WORKER_BACKEND_PARAMS=step_ms=" + strconv.Itoa(o.StepMS), "SPOOL_WORKER_SLOTS=" + strconv.Itoa(o.Slots)}},
	}
	f := &fleet{gateway: "http://127.0.0.1:" + strconv.Itoa(port), key: key, maxRSS: map[string]int64{}}
	for _, s := range specs {
		bin := filepath.Join(o.BinDir, "spool-"+s.name)
		if _, err := os.Stat(bin); err != nil {
			f.stop()
			return nil, fmt.Errorf("loadbench: %s: %w (run make build)", bin, err)
		}
		env, err := st.ServiceEnv(bus.Role(s.name), pool, "") // each service as its own NATS role
		if err != nil {
			f.stop()
			return nil, err
		}
		svc, err := devstack.StartService(s.name, bin, nil, append(append(env, "SPOOL_LOG_LEVEL=warn"), s.env...),
			filepath.Join(dir, s.name+".log"))
		if err != nil {
			f.stop()
			return nil, err
		}
		f.svcs = append(f.svcs, svc)
	}
	if err := f.ready(ctx, b); err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

// ready waits, up to a minute, until every service serves.
func (f *fleet) ready(ctx context.Context, b *bus.Bus) error {
	workers, err := bus.PoolConsumer(pool)
	if err != nil {
		return err
	}
	waiting := []struct{ who, stream, consumer string }{
		{"dispatcher", bus.StreamJobs, bus.ConsumerDispatcher},
		{"stitcher", bus.StreamResults, bus.ConsumerStitcher},
		{"worker", bus.StreamSegments, workers},
	}
	deadline := time.Now().Add(time.Minute)
	for _, w := range waiting {
		for {
			c, err := b.JetStream().Consumer(ctx, w.stream, w.consumer)
			var info *jetstream.ConsumerInfo
			if err == nil {
				info, err = c.Info(ctx)
			}
			if err == nil && info.NumWaiting > 0 {
				break
			}
			if err := f.pause(ctx, deadline, fmt.Sprintf("the %s pulls nothing from %s/%s: %v", w.who, w.stream, w.consumer, err)); err != nil {
				return err
			}
		}
	}
	for {
		resp, err := http.Get(f.gateway + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if err := f.pause(ctx, deadline, fmt.Sprintf("the gateway's /health: %v", err)); err != nil {
			return err
		}
	}
}

// pause waits a little before the next readiness check, or fails with why
// when a service has exited or the deadline has passed.
func (f *fleet) pause(ctx context.Context, deadline time.Time, why string) error {
	for _, s := range f.svcs {
		if err := s.Exited(); err != nil {
			return fmt.Errorf("loadbench: %s exited: %w", s.Name(), err)
		}
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("loadbench: services not ready in time: %s", why)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}

// sample records each service's VmRSS, and the machine's load average,
// every interval until ctx ends, and fails early when a service exits.
func (f *fleet) sample(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, s := range f.svcs {
			if err := s.Exited(); err != nil {
				return fmt.Errorf("loadbench: %s exited under load: %w", s.Name(), err)
			}
			now, _, err := s.RSS()
			if err != nil {
				continue // it may just have exited: the next round says so
			}
			f.mu.Lock()
			f.maxRSS[s.Name()] = max(f.maxRSS[s.Name()], now)
			f.mu.Unlock()
		}
		if l, err := loadAverage(); err == nil {
			f.mu.Lock()
			f.loads = append(f.loads, l)
			f.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// memory is each service's RSS figures now: the peak the kernel recorded
// (VmHWM), the largest sample and the current RSS.
func (f *fleet) memory() (map[string]Memory, error) {
	out := map[string]Memory{}
	for _, s := range f.svcs {
		now, peak, err := s.RSS()
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		sampled := f.maxRSS[s.Name()]
		f.mu.Unlock()
		out[s.Name()] = Memory{PeakMB: mb(peak), MaxSampledMB: mb(sampled), EndMB: mb(now)}
	}
	return out, nil
}

// meanLoad is the mean of the load averages sampled.
func (f *fleet) meanLoad() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	sum := 0.0
	for _, l := range f.loads {
		sum += l
	}
	return sum / float64(max(len(f.loads), 1))
}

// loadAverage is the machine's 1-minute load average (/proc/loadavg).
func loadAverage() (float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(data), " ")
	return strconv.ParseFloat(first, 64)
}

// stop asks every service to drain (SIGTERM) and waits for it.
func (f *fleet) stop() {
	var wg sync.WaitGroup
	for _, s := range f.svcs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Stop(syscall.SIGTERM) }()
	}
	wg.Wait()
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
