package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
)

// Part names, as keys of StartupTimes and in log messages.
const (
	PartNATS      = "nats"
	PartPostgres  = "postgres"
	PartMinIO     = "minio"
	PartCollector = "collector"
)

// Stack is a set of running parts. Its exported fields locate them; a field
// is empty until its part runs. Its methods are safe for concurrent use.
type Stack struct {
	NATSURL     string // nats://127.0.0.1:port
	PGDSN       string // postgres://spool@127.0.0.1:port/spool?sslmode=disable
	S3Endpoint  string // 127.0.0.1:port, no scheme
	S3AccessKey string
	S3SecretKey string
	S3Bucket    string
	// OTLPEndpoint is the collector's OTLP/HTTP endpoint, http://127.0.0.1:port,
	// and TracesFile where it writes the traces it receives (OTLP/JSON lines).
	OTLPEndpoint, TracesFile string

	mu      sync.Mutex
	dir     string
	temp    bool // dir is ours, removed on Stop
	log     *slog.Logger
	find    finder
	nats    *natsServer
	auth    *natsAuth // the users of NATS, generated at start-up
	tls     *natsTLS  // when NATS requires TLS
	admin   *bus.Bus  // declares the topology, and again after a loss
	pg      *postgresServer
	minio   *minioServer
	otel    *collectorServer
	s3users s3Users // the services' MinIO users (minio_users.go), made when MinIO first starts
	times   map[string]time.Duration
	ports   map[string]int // of the parts Kill or StopFast ended, for Restart
	stopped bool
}

// Start starts the parts opts asks for, in parallel, and waits until each is
// healthy. On error it stops what it started and removes its temporary
// directory.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	s, err := newStack(opts)
	if err != nil {
		return nil, err
	}
	if err := s.Add(ctx, opts); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

func newStack(opts Options) (*Stack, error) {
	s := &Stack{dir: opts.Dir, log: opts.logger(), find: newFinder(), times: map[string]time.Duration{}, ports: map[string]int{}}
	auth, err := newNATSAuth()
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	s.auth = auth
	dir, temp, err := dataDir(s.dir, "spool-devstack-")
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	s.dir, s.temp = dir, temp
	if opts.NATSTLS {
		if s.tls, err = newNATSTLS(filepath.Join(dir, "nats-tls")); err != nil {
			if s.temp {
				os.RemoveAll(s.dir)
			}
			return nil, fmt.Errorf("devstack: %w", err)
		}
	}
	if err := markDurable(s.dir, opts.Durable); err != nil {
		if s.temp {
			os.RemoveAll(s.dir)
		}
		return nil, err
	}
	return s, nil
}

// dataDir returns dir, made absolute and created, or, when dir is "", a new
// temporary directory named prefix* (temp true), open to every user:
// Postgres may run as another user, which must reach its data below.
func dataDir(dir, prefix string) (string, bool, error) {
	if dir == "" {
		dir, err := os.MkdirTemp("", prefix)
		if err != nil {
			return "", false, err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return "", false, err
		}
		return dir, true, nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", false, fmt.Errorf("dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	return dir, false, nil
}

// Dir returns the directory holding the parts' data and logs
// (postgres.log, minio.log).
func (s *Stack) Dir() string { return s.dir }

// Add starts, in parallel, the parts opts asks for that s does not run yet,
// on opts' ports; opts.Dir, opts.Durable (the stack's, from Start) and
// opts.Logger are ignored. On error it stops the
// parts this call started and leaves the others running.
func (s *Stack) Add(ctx context.Context, opts Options) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, 4)
		nats *natsServer
		pg   *postgresServer
		mn   *minioServer
		oc   *collectorServer
		took = make([]time.Duration, 4)
	)
	run := func(i int, start func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			if err := start(); err != nil {
				errs[i] = fmt.Errorf("devstack: %w", err)
			}
			took[i] = time.Since(t)
		}()
	}
	if opts.NATS && s.nats == nil {
		run(0, func() (err error) { nats, err = startNATS(ctx, s.dir, opts.NATSPort, s.auth, s.tls, s.log); return err })
	}
	if opts.Postgres && s.pg == nil {
		run(1, func() (err error) { pg, err = startPostgres(ctx, s.find, s.dir, opts.PGPort, s.log); return err })
	}
	if opts.MinIO && s.minio == nil {
		if s.s3users == nil {
			s.s3users = newS3Users()
		}
		users := s.s3users
		run(2, func() (err error) {
			if mn, err = startMinIO(ctx, s.find, s.dir, opts.MinIOPort, opts.BuildMinIO, s.log); err != nil {
				return err
			}
			return provisionMinIO(ctx, mn.endpoint, users)
		})
	}
	if opts.Collector && s.otel == nil {
		run(3, func() (err error) {
			oc, err = startCollector(ctx, s.find, s.dir, opts.CollectorPort, s.log)
			return err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stops := []error{err}
		if oc != nil {
			stops = append(stops, oc.stop())
		}
		if nats != nil {
			stops = append(stops, nats.stop())
		}
		if pg != nil {
			stops = append(stops, pg.stop())
		}
		if mn != nil {
			stops = append(stops, mn.stop())
		}
		return errors.Join(stops...)
	}
	if nats != nil {
		s.nats, s.NATSURL, s.times[PartNATS] = nats, nats.url, took[0]
		if err := s.declare(ctx); err != nil {
			return errors.Join(err, nats.stop())
		}
	}
	if pg != nil {
		s.pg, s.PGDSN, s.times[PartPostgres] = pg, pg.dsn, took[1]
	}
	if mn != nil {
		s.minio, s.S3Endpoint, s.times[PartMinIO] = mn, mn.endpoint, took[2]
		s.S3AccessKey, s.S3SecretKey, s.S3Bucket = S3AccessKey, S3SecretKey, S3Bucket
	}
	if oc != nil {
		s.otel, s.OTLPEndpoint, s.TracesFile, s.times[PartCollector] = oc, oc.endpoint, oc.traces, took[3]
	}
	return nil
}

// StartupTimes returns how long each running part took to start and become
// healthy (for MinIO, including a build), keyed by PartNATS, PartPostgres
// and PartMinIO.
func (s *Stack) StartupTimes() map[string]time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]time.Duration, len(s.times))
	for k, v := range s.times {
		m[k] = v
	}
	return m
}

// Env returns the SPOOL_* variables, as "NAME=value", that point libs/config
// at the parts, as the admin user of NATS (ServiceEnv gives a service's) (a part that Kill ended keeps its address), and the OTEL_* ones that point telemetry at the
// collector when it runs.
func (s *Stack) Env() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var env []string
	if s.NATSURL != "" {
		c, _, _ := s.auth.config(s.NATSURL, s.tlsCA(), bus.RoleAdmin, "", "")
		env = append(env, natsEnv(c)...)
	}
	if s.PGDSN != "" {
		env = append(env, "SPOOL_PG_DSN="+s.PGDSN)
	}
	if s.S3Endpoint != "" {
		env = append(env,
			"SPOOL_S3_ENDPOINT="+s.S3Endpoint,
			"SPOOL_S3_ACCESS_KEY="+s.S3AccessKey,
			"SPOOL_S3_SECRET_KEY="+s.S3SecretKey,
			"SPOOL_S3_BUCKET="+s.S3Bucket,
		)
	}
	if s.otel != nil {
		env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+s.OTLPEndpoint, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
	}
	return env
}

// Stop stops every part, waiting for each to exit, and removes the stack's
// directory when it is temporary. Stopping twice is harmless.
func (s *Stack) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var (
		wg   sync.WaitGroup
		errs = make([]error, 5)
	)
	stop := func(i int, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	if s.admin != nil {
		s.admin.Conn().Close() // no drain: the server may be gone
	}
	if s.nats != nil {
		stop(0, s.nats.stop)
	}
	if s.pg != nil {
		stop(1, s.pg.stop)
	}
	if s.minio != nil {
		stop(2, s.minio.stop)
	}
	if s.otel != nil {
		stop(3, s.otel.stop)
	}
	wg.Wait()
	if s.temp {
		if err := os.RemoveAll(s.dir); err != nil {
			errs[4] = fmt.Errorf("remove %s: %w", s.dir, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("devstack: stop: %w", err)
	}
	s.log.Info("devstack stopped", "dir", s.dir, "removed", s.temp)
	return nil
}
