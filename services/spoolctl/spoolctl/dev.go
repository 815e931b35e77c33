package spoolctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/apikey"
	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/service"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/gateway/gateway"
	"github.com/spoolvideo/spool/services/spoolctl/e2ebench"
	"github.com/spoolvideo/spool/services/stitcher/stitcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlags("dev", "[flags]", stderr)
	dir := fs.String("dir", ".spool/dev", "directory of the stack's data (Postgres, MinIO, NATS); kept between runs")
	addr := fs.String("addr", "127.0.0.1:8080", "the gateway's address")
	slots := fs.Int("slots", 2, "worker slots; each serves every CPU model of the catalog, and -model's")
	catalog := fs.String("catalog", os.Getenv("SPOOL_CATALOG"), "model catalog file replacing the shipped one (default $SPOOL_CATALOG); the pool default serves its CPU models")
	demo := fs.String("demo", "", "submit the demo's jobs: text to video (60 s of 720p, three prompts; with -model, that model at its default resolution), "+
		"written here, and a talking head (see -talk); show their progress, then serve the dashboard until Ctrl-C")
	spec := fs.String("spec", "", "with -demo: submit this job spec (a JSON file) instead of the demo's text to video; the talking head is still added unless -talk=false")
	talk := fs.Bool("talk", true, "with -demo: also a talking head, made at the same time: a voice spoken by espeak-ng (make deps) and an avatar drawn by ffmpeg, "+
		"made under -dir/demo and uploaded, animated by ref-talk at 640x360, with its sound, written beside -demo's video (out/demo.mp4: out/demo-talk.mp4)")
	exit := fs.Bool("exit", false, "with -demo: exit once the videos are written, for scripts (default: keep serving until Ctrl-C)")
	level := fs.String("log", "warn", "log level of the services")
	otel := fs.Bool("otel", true, "start the OpenTelemetry Collector (make otelcol) and export traces and metrics to it, written under -dir/otel")
	metrics := fs.String("metrics", "", "serve the services' Prometheus /metrics at this address, e.g. 127.0.0.1:9464")
	ef := addEngineFlags(fs, "the development pool serves besides the CPU models")
	if _, err := parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if *demo == "" && (*spec != "" || *exit) {
		fs.Usage()
		return fmt.Errorf("spoolctl dev: -spec and -exit need -demo")
	}
	*talk = *talk && *demo != ""
	demoID := fmt.Sprintf("demo-%d", time.Now().Unix())
	job := []byte(e2ebench.DemoSpec(demoID, false))
	kind := "text to video"
	if *spec != "" {
		kind = "spec " + filepath.Base(*spec)
		if job, err = os.ReadFile(*spec); err != nil {
			return fmt.Errorf("spoolctl dev: %w", err)
		}
	}
	cat, err := jobspec.LoadCatalog(*catalog)
	if err != nil {
		return fmt.Errorf("spoolctl dev: %w", err)
	}
	// The stack's one pool serves every CPU model, so that a worker of any
	// of them started against the stack (SPOOL_WORKER_POOL=default) joins in.
	pool := cat.CPUPool("default")
	if len(pool.Models) == 0 {
		return fmt.Errorf("spoolctl dev: the catalog has no CPU model (gpu_memory_mib 0) for the development pool to serve")
	}
	extra, err := ef.models(cat)
	if err != nil {
		return fmt.Errorf("spoolctl dev: %w", err)
	}
	for _, m := range extra {
		if !slices.Contains(pool.Models, m) {
			pool.Models = append(pool.Models, m)
		}
	}
	if *ef.model != "" && *spec == "" {
		if job, err = demoFor(job, *ef.model); err != nil {
			return fmt.Errorf("spoolctl dev: %w", err)
		}
	}
	// The talking head's media are made before the stack starts, so that a
	// machine without espeak-ng learns it at once.
	var talkWith talkMedia
	var talker string
	if *talk {
		if talker, err = talkModel(cat, pool.Models); err != nil {
			return fmt.Errorf("spoolctl dev: %w", err)
		}
		if talkWith, err = makeTalkMedia(ctx, filepath.Join(*dir, "demo"), talkWidth, talkHeight); err != nil {
			return fmt.Errorf("spoolctl dev: %w", err)
		}
	}
	plugins, modelsDir := ef.dirs()
	pools, models := jobspec.Pools{pool}.String(), config.Catalog{File: *catalog}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*dir)
	fmt.Fprintf(stderr, "starting NATS, Postgres and MinIO in %s …\n", abs)
	st, err := devstack.Start(ctx, devstack.Options{Dir: abs, NATS: true, Postgres: true, MinIO: true, BuildMinIO: true})
	if err != nil {
		return err
	}
	defer func() {
		if serr := st.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("spoolctl dev: stopping the stack: %w", serr)
		}
	}()
	if *otel && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		switch err := st.Add(ctx, devstack.Options{Collector: true}); {
		case errors.Is(err, devstack.ErrMissingBinary):
			fmt.Fprintf(stderr, "no collector, so traces stay in the process: %v\n", err)
		case err != nil:
			return err
		default:
			for _, kv := range st.Env() {
				if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
					os.Setenv(k, v)
				}
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	natsCfg, pgCfg := st.NATSConfig(), st.PostgresConfig()
	c, err := service.Start(ctx, "spoolctl-dev", &config.Service{LogLevel: *level, Metrics: *metrics}, service.Parts{NATS: &natsCfg, Postgres: &pgCfg})
	if err != nil {
		return err
	}
	defer c.Close()
	// Each service reaches MinIO as its own user, as deployed (deploy/minio).
	blobs := map[string]*blob.Store{}
	for _, svc := range devstack.S3Services {
		cfg, err := st.S3UserConfig(svc)
		if err == nil {
			blobs[svc], err = blob.New(cfg)
		}
		if err != nil {
			return fmt.Errorf("spoolctl dev: %w", err)
		}
	}
	log := c.Log
	// Each service connects as its own NATS user, with its role's
	// permissions only, as in a deployment (c.Bus is the admin's).
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	as := func(role bus.Role, pool string) (*bus.Bus, error) {
		cfg, err := st.NATSUser(role, pool, "")
		if err != nil {
			return nil, err
		}
		cfg.Name = "spoolctl-dev-" + string(role)
		b, err := bus.Connect(ctx, cfg, bus.WithLogger(log))
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = b.Close() })
		return b, nil
	}
	buses := map[bus.Role]*bus.Bus{}
	for _, r := range []bus.Role{bus.RoleDispatcher, bus.RoleStitcher, bus.RoleWorker, bus.RoleGateway} {
		if buses[r], err = as(r, pool.Name); err != nil {
			return err
		}
	}
	var runs []func(context.Context) error
	d, err := dispatcher.New(ctx, dispatcher.Config{Catalog: models, Pools: pools, MaxAttempts: 3, RetryBackoff: time.Second,
		ReconcileEvery: 10 * time.Second, RunningStale: 90 * time.Second, QueuedStale: 5 * time.Minute, PoolWindow: 32, LiveAhead: 3,
		OutboxBatch: 256, SubmitBatch: 64, SegmentDeadline: 30 * time.Minute}, buses[bus.RoleDispatcher], c.Store, log, dispatcher.WithBlob(blobs["dispatcher"]))
	if err != nil {
		return err
	}
	sti, err := stitcher.New(stitcher.Config{ID: "dev", PartSize: 8 << 20, OpenJobs: 4, Parallel: 4, Lease: 30 * time.Second,
		LiveWindow: 10, Codec: "h264", Sweep: 10 * time.Second}, buses[bus.RoleStitcher], c.Store, blobs["stitcher"], log)
	if err != nil {
		return err
	}
	wk, err := worker.New(worker.Config{ID: "dev", Pool: pool.Name, Catalog: models, Models: pool.Models, Slots: *slots, Heartbeat: 10 * time.Second,
		Params: ef.engineParams(cat, pool.Models), PluginDir: plugins, ModelsDir: modelsDir},
		buses[bus.RoleWorker], blobs["worker"], nil, log)
	if err != nil {
		return err
	}
	defer wk.Close()
	g, err := gateway.New(gateway.Config{Catalog: models, Pools: pools, MaxBody: 1 << 20, URLKey: config.Secret(apikey.NewSecret())},
		buses[bus.RoleGateway], c.Store, blobs["gateway"], log)
	if err != nil {
		return err
	}
	key, err := devAdminKey(ctx, c.Store)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("spoolctl dev: the gateway's address: %w", err)
	}
	// The retention janitor with the dispatcher's defaults, so that a dev
	// store left running stays bounded as a deployed one does.
	jan, err := dispatcher.NewJanitor(dispatcher.Retention{Jobs: 168 * time.Hour, Uploads: 72 * time.Hour, Interval: 10 * time.Minute,
		Lease: 5 * time.Minute, Batch: 100}, c.Store, blobs["dispatcher"], log)
	if err != nil {
		return err
	}
	runs = append(runs, d.Run, sti.Run, wk.Run, jan.Run, func(ctx context.Context) error { return gateway.Serve(ctx, ln, g.Handler()) })
	done := make(chan error, len(runs))
	for _, run := range runs {
		go func() { done <- run(ctx) }()
	}
	defer func() {
		cancel()
		for range runs {
			<-done
		}
	}()
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "spool is running: dispatcher, stitcher, %d worker slots (pool %s: %s), gateway\n\n", *slots, pool.Name,
		strings.Join(pool.Models, ", "))
	fmt.Fprintf(stdout, "  dashboard %s\n", dashboardURL(url, key, ""))
	fmt.Fprintf(stdout, "  API      %s   (OpenAPI: %s/openapi.yaml)\n", url, url)
	fmt.Fprintf(stdout, "  jobs     %s/jobs\n", url)
	if st.TracesFile != "" {
		fmt.Fprintf(stdout, "  traces   %s   (OTLP at %s)\n", st.TracesFile, st.OTLPEndpoint)
	}
	if *metrics != "" {
		fmt.Fprintf(stdout, "  metrics  http://%s/metrics\n", *metrics)
	}
	fmt.Fprint(stdout, "\nFor other shells:\n")
	exports, err := devExports(st, url)
	if err != nil {
		return err
	}
	for _, kv := range append(exports, "SPOOL_API_KEY="+key) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(stdout, "  export %s='%s'\n", k, v)
	}
	fmt.Fprintln(stdout)
	if *demo != "" {
		cl := newGatewayClient(url, key)
		jobs := []demoJob{{kind: kind, spec: job, out: *demo}}
		if *talk {
			tj, err := cl.talkJob(ctx, talkWith, talker, demoID+"-talk", talkPath(*demo))
			if err != nil {
				return fmt.Errorf("spoolctl dev: %w", err)
			}
			jobs = append(jobs, tj)
		}
		runs, err := cl.runDemo(ctx, jobs, stdout, stderr)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("spoolctl dev: interrupted before the demo's videos were written")
			}
			return fmt.Errorf("spoolctl dev: %w", err)
		}
		if *talk {
			fmt.Fprintf(stdout, "\nthe talking head, with its sound: ffplay %s", runs[1].out)
			if !*exit {
				fmt.Fprintf(stdout, ", or the dashboard at %s", dashboardURL(url, key, runs[1].id))
			}
			fmt.Fprintln(stdout)
		}
		if *exit {
			return nil
		}
		fmt.Fprintf(stdout, "serving the dashboard at %s until Ctrl-C\n", dashboardURL(url, key, runs[0].id))
	} else {
		fmt.Fprintln(stdout, "serving until Ctrl-C")
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		return err
	}
}

// devAdminKey creates the admin key of a dev run in s, where the stack's
// gateway finds it, and returns it: spoolctl dev prints it with its other
// exports, and in the dashboard's URL.
func devAdminKey(ctx context.Context, s *store.Store) (string, error) {
	token, hash, err := apikey.Mint("")
	if err != nil {
		return "", err
	}
	id, _, _ := apikey.Parse(token)
	name := "spoolctl dev " + time.Now().UTC().Format(time.RFC3339)
	if _, err := s.CreateAPIKey(ctx, store.APIKey{ID: id, Tenant: jobspec.DefaultTenant, Name: name, Admin: true, Hash: hash},
		store.AuditEntry{Tenant: jobspec.DefaultTenant, Action: "key.create", Target: id, Detail: map[string]any{"name": name, "admin": true}}); err != nil {
		return "", fmt.Errorf("spoolctl dev: the admin key: %w", err)
	}
	return token, nil
}

// dashboardURL is the dashboard at base, given key in its fragment (which
// a browser sends to no server; the dashboard keeps it for the tab and
// takes it off the address), showing job when one is named.
func dashboardURL(base, key, job string) string {
	f := "key=" + url.QueryEscape(key)
	if job != "" {
		f += "&job=" + url.QueryEscape(job)
	}
	return base + "/#" + f
}

// devExports are the export lines for other shells: the stack's
// variables with, for NATS, not the admin but the submit-only client role,
// both as SPOOL_NATS_* and as the nats CLI's NATS_URL, NATS_USER and
// NATS_PASSWORD (so that `nats pub spool.jobs.submit …` works as it is).
func devExports(st *devstack.Stack, gateway string) ([]string, error) {
	client, err := st.NATSUser(bus.RoleClient, "", "")
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range st.Env() {
		if !strings.HasPrefix(kv, "SPOOL_NATS_") {
			env = append(env, kv)
		}
	}
	return append([]string{"SPOOL_NATS_URL=" + client.URL, "SPOOL_NATS_USER=" + client.User, "SPOOL_NATS_PASSWORD=" + client.Password.Reveal(),
		"NATS_URL=" + client.URL, "NATS_USER=" + client.User, "NATS_PASSWORD=" + client.Password.Reveal()},
		append(env, "SPOOL_GATEWAY_URL="+gateway)...), nil
}

// demoFor is the demo spec for model: the same timeline and length, at the
// model's default resolution.
func demoFor(spec []byte, model string) ([]byte, error) {
	var v map[string]any
	if err := json.Unmarshal(spec, &v); err != nil {
		return nil, fmt.Errorf("the demo spec: %w", err)
	}
	v["model"] = model
	delete(v, "resolution")
	return json.Marshal(v)
}
