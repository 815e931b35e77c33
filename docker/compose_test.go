package docker_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads compose.yaml as `docker compose` does, validated
// against the compose-spec schema, with the given profiles active and an
// empty environment (so every ${VAR:-default} takes its default).
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv(nil),
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("load compose.yaml with profiles %v: %v", profiles, err)
	}
	return p
}

func TestComposeServicesPerProfile(t *testing.T) {
	base := []string{"dispatcher", "gateway", "grafana", "minio", "minio-init", "nats", "nats-auth", "nats-topology",
		"otel-collector", "postgres", "prometheus", "stitcher", "tempo"}
	for _, tc := range []struct {
		profiles []string
		want     []string
	}{
		{nil, base},
		{[]string{"cpu"}, append(slices.Clone(base), "worker-cpu")},
		{[]string{"gpu"}, append(slices.Clone(base), "worker-gpu")},
		{[]string{"*"}, append(slices.Clone(base), "worker-cpu", "worker-gpu")},
	} {
		p := loadCompose(t, tc.profiles...)
		got := slices.Sorted(maps.Keys(p.Services))
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("profiles %v: services %v, want %v", tc.profiles, got, want)
		}
		if p.Name != "spool" {
			t.Errorf("project name %q, want spool", p.Name)
		}
	}
}

func TestComposeWorkerProfiles(t *testing.T) {
	p := loadCompose(t, "*")
	for name, want := range map[string]string{"worker-gpu": "gpu", "worker-cpu": "cpu"} {
		if got := p.Services[name].Profiles; !slices.Equal(got, []string{want}) {
			t.Errorf("%s: profiles %v, want [%s]", name, got, want)
		}
	}
	for name, s := range p.Services {
		if !strings.HasPrefix(name, "worker-") && len(s.Profiles) > 0 {
			t.Errorf("%s is under profiles %v; only workers should be", name, s.Profiles)
		}
	}
}

func TestComposeGPUWorkerReservesNvidiaGPUs(t *testing.T) {
	p := loadCompose(t, "gpu")
	w := p.Services["worker-gpu"]
	if w.Deploy == nil || w.Deploy.Resources.Reservations == nil {
		t.Fatal("worker-gpu has no deploy.resources.reservations")
	}
	devs := w.Deploy.Resources.Reservations.Devices
	if len(devs) != 1 {
		t.Fatalf("worker-gpu reserves %d device requests, want 1", len(devs))
	}
	d := devs[0]
	if d.Driver != "nvidia" || !slices.Contains(d.Capabilities, "gpu") {
		t.Errorf("worker-gpu device request %+v, want driver nvidia with capability gpu", d)
	}
	if d.Count != -1 && d.Count < 1 {
		t.Errorf("worker-gpu reserves count %d, want all (-1) or ≥ 1", d.Count)
	}
	if w.Environment["SPOOL_WORKER_BACKEND"] == nil || *w.Environment["SPOOL_WORKER_BACKEND"] != "cuda" {
		t.Errorf("worker-gpu backend %v, want cuda", w.Environment["SPOOL_WORKER_BACKEND"])
	}
	c := loadCompose(t, "cpu").Services["worker-cpu"]
	if c.Deploy != nil && c.Deploy.Resources.Reservations != nil && len(c.Deploy.Resources.Reservations.Devices) > 0 {
		t.Error("worker-cpu reserves devices; it must run where there is no GPU")
	}
	if m := c.Environment["SPOOL_WORKER_MODELS"]; m == nil || *m != "ref,ref-talk,sim" {
		t.Errorf("worker-cpu models %v, want ref,ref-talk,sim: the models of its pool", m)
	}
	// The dispatcher and the gateway declare the same pools, each served by
	// one of the workers.
	cpu := loadCompose(t, "cpu")
	dis, gw := cpu.Services["dispatcher"], cpu.Services["gateway"]
	for _, v := range []*string{dis.Environment["SPOOL_DISPATCHER_POOLS"], gw.Environment["SPOOL_GATEWAY_POOLS"]} {
		if v == nil || *v != "default:ref,ref-talk,sim;gpu:ref-cuda,ref-talk-cuda" {
			t.Errorf("pools %v, want default:ref,ref-talk,sim;gpu:ref-cuda,ref-talk-cuda", v)
		}
	}
	if p := w.Environment["SPOOL_WORKER_POOL"]; p == nil || *p != "gpu" {
		t.Errorf("worker-gpu pool %v, want gpu", p)
	}
}

// The worker drains on SIGTERM: compose must send SIGTERM and wait longer
// than the drain before it kills.
func TestComposeWorkersDrain(t *testing.T) {
	p := loadCompose(t, "*")
	for _, name := range []string{"worker-gpu", "worker-cpu"} {
		w := p.Services[name]
		if w.StopSignal != "SIGTERM" {
			t.Errorf("%s: stop_signal %q, want SIGTERM", name, w.StopSignal)
		}
		drain := w.Environment["SPOOL_WORKER_DRAIN_TIMEOUT"]
		if drain == nil {
			t.Errorf("%s: SPOOL_WORKER_DRAIN_TIMEOUT unset (the default, 5m, outlasts the grace period)", name)
			continue
		}
		d, err := time.ParseDuration(*drain)
		if err != nil {
			t.Errorf("%s: SPOOL_WORKER_DRAIN_TIMEOUT: %v", name, err)
			continue
		}
		if w.StopGracePeriod == nil || int64(*w.StopGracePeriod) <= int64(d) {
			t.Errorf("%s: stop_grace_period %v must exceed the drain timeout %v", name, w.StopGracePeriod, d)
		}
	}
}

func TestComposeDependsOnExistingServices(t *testing.T) {
	p := loadCompose(t, "*")
	conditions := []string{types.ServiceConditionStarted, types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully}
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on %q, which is no service", name, dep)
				continue
			}
			if !slices.Contains(conditions, d.Condition) {
				t.Errorf("%s → %s: condition %q", name, dep, d.Condition)
			}
			if d.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable) {
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
			if d.Condition == types.ServiceConditionCompletedSuccessfully && target.Restart != "no" {
				t.Errorf("%s waits for %s to complete, but %s restarts (%q)", name, dep, dep, target.Restart)
			}
		}
	}
	// The start-up order the services rely on.
	for name, deps := range map[string]map[string]string{
		"dispatcher":    {"nats": types.ServiceConditionHealthy, "postgres": types.ServiceConditionHealthy},
		"stitcher":      {"nats": types.ServiceConditionHealthy, "postgres": types.ServiceConditionHealthy, "minio-init": types.ServiceConditionCompletedSuccessfully},
		"gateway":       {"nats": types.ServiceConditionHealthy, "postgres": types.ServiceConditionHealthy, "minio-init": types.ServiceConditionCompletedSuccessfully},
		"worker-gpu":    {"nats": types.ServiceConditionHealthy, "minio-init": types.ServiceConditionCompletedSuccessfully},
		"worker-cpu":    {"nats": types.ServiceConditionHealthy, "minio-init": types.ServiceConditionCompletedSuccessfully},
		"minio-init":    {"minio": types.ServiceConditionHealthy},
		"nats":          {"nats-auth": types.ServiceConditionCompletedSuccessfully},
		"nats-topology": {"nats": types.ServiceConditionHealthy},
	} {
		for dep, cond := range deps {
			if got := p.Services[name].DependsOn[dep].Condition; got != cond {
				t.Errorf("%s → %s: condition %q, want %q", name, dep, got, cond)
			}
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := loadCompose(t, "*")
	for _, name := range []string{"nats", "postgres", "minio", "prometheus", "grafana"} {
		hc := p.Services[name].HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s has no healthcheck", name)
			continue
		}
		if hc.Test[0] != "CMD" {
			t.Errorf("%s: healthcheck %v should be exec form (CMD), needing no shell", name, hc.Test)
		}
	}
	// NATS is healthy only with JetStream up.
	if hc := p.Services["nats"].HealthCheck; hc != nil && !strings.Contains(strings.Join(hc.Test, " "), "js-enabled-only=true") {
		t.Errorf("nats healthcheck %v does not check JetStream", hc.Test)
	}
}

// Every image is pinned: a tag that is not latest, or a digest.
func TestComposeImagesPinned(t *testing.T) {
	p := loadCompose(t, "*")
	for name, s := range p.Services {
		if s.Build != nil {
			if !strings.HasPrefix(s.Image, "spool/") {
				t.Errorf("%s: built image named %q, want spool/…", name, s.Image)
			}
			continue
		}
		if err := pinned(s.Image); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The built services use this repository's Dockerfiles with the
// repository root as the build context.
func TestComposeBuilds(t *testing.T) {
	p := loadCompose(t, "*")
	root := repoRoot(t)
	want := map[string]string{}
	for _, im := range images {
		want[im.Service] = im.Dockerfile
	}
	want["worker-cpu"] = "worker.Dockerfile"
	// spoolctl's jobs run the dispatcher's image, which ships it (tools).
	want["nats-auth"] = "dispatcher.Dockerfile"
	want["nats-topology"] = "dispatcher.Dockerfile"
	for name, df := range want {
		s, ok := p.Services[name]
		if !ok || s.Build == nil {
			t.Errorf("%s is not built from a Dockerfile", name)
			continue
		}
		if s.Build.Context != root {
			t.Errorf("%s: build context %s, want the repository root %s", name, s.Build.Context, root)
		}
		if filepath.Clean(s.Build.Dockerfile) != filepath.Join("docker", df) {
			t.Errorf("%s: dockerfile %s, want docker/%s", name, s.Build.Dockerfile, df)
		}
	}
}

// Every bind mount's source lies in the repository and exists: compose
// would otherwise create an empty directory in its place and the service
// would start without its configuration.
func TestComposeBindMountsExist(t *testing.T) {
	p := loadCompose(t, "*")
	root := repoRoot(t)
	n := 0
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				if _, ok := p.Volumes[v.Source]; v.Type == types.VolumeTypeVolume && !ok {
					t.Errorf("%s: named volume %q is not declared", name, v.Source)
				}
				continue
			}
			n++
			rel, err := filepath.Rel(root, v.Source)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: bind mount %s lies outside the repository", name, v.Source)
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind mount source %s: %v", name, rel, err)
			}
			if !v.ReadOnly {
				t.Errorf("%s: bind mount %s should be read-only", name, rel)
			}
		}
	}
	if n == 0 {
		t.Error("no bind mounts found; the loader's output changed shape")
	}
}

// The services reach the others by their compose names.
func TestComposeServiceEnvironment(t *testing.T) {
	p := loadCompose(t, "*")
	for _, name := range []string{"dispatcher", "stitcher", "gateway", "worker-gpu", "worker-cpu"} {
		env := p.Services[name].Environment
		for k, want := range map[string]string{
			"SPOOL_NATS_URL":              "nats://nats:4222",
			"SPOOL_S3_ENDPOINT":           "minio:9000",
			"SPOOL_METRICS_ADDR":          ":9464",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		} {
			if v := env[k]; v == nil || *v != want {
				t.Errorf("%s: %s=%v, want %q", name, k, deref(v), want)
			}
		}
		if dsn := env["SPOOL_PG_DSN"]; dsn == nil || !strings.Contains(*dsn, "@postgres:5432/spool") {
			t.Errorf("%s: SPOOL_PG_DSN=%v does not name the postgres service", name, deref(dsn))
		}
	}
	if v := p.Services["gateway"].Environment["SPOOL_GATEWAY_ADDR"]; v == nil || *v != ":8080" {
		t.Errorf("gateway: SPOOL_GATEWAY_ADDR=%v, want :8080", deref(v))
	}
	// The bucket the services use is the one minio-init creates, with the
	// credentials MinIO is started with.
	mc := p.Services["minio-init"]
	if !slices.Contains(mc.Command, "local/"+*p.Services["stitcher"].Environment["SPOOL_S3_BUCKET"]) {
		t.Errorf("minio-init command %v does not create the bucket %s", mc.Command, *p.Services["stitcher"].Environment["SPOOL_S3_BUCKET"])
	}
	m := p.Services["minio"].Environment
	s := p.Services["stitcher"].Environment
	if *m["MINIO_ROOT_USER"] != *s["SPOOL_S3_ACCESS_KEY"] || *m["MINIO_ROOT_PASSWORD"] != *s["SPOOL_S3_SECRET_KEY"] {
		t.Error("the services' S3 credentials differ from MinIO's root credentials")
	}
}

func deref(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}

// natsAuthDir is where spoolctl nats auth writes in compose's nats-auth,
// a directory of the dispatcher's image (tools) holding the volume.
const natsAuthDir = "/var/lib/spool/nats-auth"

// TestComposeNATSUsers checks that NATS runs with authorization and that
// each service connects as its own user, with nothing but its own
// password file: the users nats-auth writes (spoolctl nats auth), the
// server's include of their hashes, and the topology declared by the only
// service that is admin.
func TestComposeNATSUsers(t *testing.T) {
	p := loadCompose(t, "*")
	gen := p.Services["nats-auth"]
	if gen.Entrypoint == nil || !slices.Equal([]string(gen.Entrypoint), []string{"/usr/local/bin/spoolctl"}) ||
		!slices.Equal(gen.Command[:4], []string{"nats", "auth", "--out", natsAuthDir}) {
		t.Fatalf("nats-auth runs %v %v, want spoolctl nats auth --out %s", gen.Entrypoint, gen.Command, natsAuthDir)
	}
	if len(gen.Volumes) != 1 || gen.Volumes[0].Source != "nats-auth" || gen.Volumes[0].Target != natsAuthDir || gen.Volumes[0].ReadOnly {
		t.Errorf("nats-auth mounts %+v, want the volume nats-auth writable at %s", gen.Volumes, natsAuthDir)
	}
	genPools := strings.Split(flagValue(gen.Command, "--pools"), ",")

	// The server includes the hashes: nats.conf's include, relative to its
	// directory, names the file in the volume's server/ directory.
	nats := p.Services["nats"]
	conf, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "\ninclude auth/auth.conf\n") {
		t.Error("deploy/nats/nats.conf does not include auth/auth.conf")
	}
	if m := authMount(nats); m == nil || m.Target != "/etc/nats/auth" || m.Volume.Subpath != "server" || !m.ReadOnly {
		t.Errorf("nats mounts %+v of the volume nats-auth, want server/ read-only at /etc/nats/auth (beside /etc/nats/nats.conf)", m)
	}
	if !slices.Contains(nats.Command, "/etc/nats/nats.conf") {
		t.Errorf("nats runs %v, not /etc/nats/nats.conf", nats.Command)
	}

	users := map[string]string{} // user → service
	for name, s := range p.Services {
		if name == "nats-auth" || name == "nats" {
			continue
		}
		m := authMount(s)
		url := s.Environment["SPOOL_NATS_URL"]
		if url == nil {
			if m != nil {
				t.Errorf("%s mounts the NATS users' volume but does not connect to NATS", name)
			}
			continue
		}
		user, file := deref(s.Environment["SPOOL_NATS_USER"]), deref(s.Environment["SPOOL_NATS_PASSWORD_FILE"])
		want := map[string]string{"dispatcher": "dispatcher", "stitcher": "stitcher", "gateway": "gateway", "nats-topology": "admin",
			"worker-cpu": "worker@" + deref(s.Environment["SPOOL_WORKER_POOL"]), "worker-gpu": "worker@" + deref(s.Environment["SPOOL_WORKER_POOL"])}[name]
		switch {
		case want == "":
			t.Errorf("%s connects to NATS; give it a user of its own and add it here", name)
		case user != want:
			t.Errorf("%s: SPOOL_NATS_USER=%s, want %s", name, user, want)
		}
		if user == "admin" && name != "nats-topology" {
			t.Errorf("%s connects as admin; only nats-topology may", name)
		}
		if other, ok := users[user]; ok {
			t.Errorf("%s and %s share the NATS user %s", name, other, user)
		}
		users[user] = name
		// Its own password file alone: the volume's users/<user>
		// directory, read-only, where SPOOL_NATS_PASSWORD_FILE points.
		if m == nil || m.Volume == nil || m.Volume.Subpath != "users/"+user || !m.ReadOnly || filepath.Join(m.Target, "password") != file {
			t.Errorf("%s: mounts %+v of nats-auth with SPOOL_NATS_PASSWORD_FILE=%s; want users/%s alone, read-only, holding that file", name, m, file, user)
		}
		if _, ok := s.Environment["SPOOL_NATS_PASSWORD"]; ok {
			t.Errorf("%s: a password in the environment; it belongs in the mounted file", name)
		}
		if d := s.DependsOn["nats-auth"]; name != "nats-topology" && d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s → nats-auth: condition %q, want %s (its password file)", name, d.Condition, types.ServiceConditionCompletedSuccessfully)
		}
		if pool, ok := strings.CutPrefix(user, "worker@"); ok && !slices.Contains(genPools, pool) {
			t.Errorf("%s is user %s, but nats-auth makes the users of pools %v", name, user, genPools)
		}
	}
	if _, ok := users["admin"]; !ok {
		t.Error("no service declares the topology as admin")
	}
	top := p.Services["nats-topology"]
	if !slices.Equal(top.Command[:3], []string{"nats", "declare", "--keep"}) {
		t.Errorf("nats-topology runs %v, want nats declare --keep", top.Command)
	}
	if pools := strings.Split(flagValue(top.Command, "--pools"), ","); !slices.Equal(pools, genPools) {
		t.Errorf("nats-topology declares pools %v, nats-auth makes the users of %v", pools, genPools)
	}
}

// authMount returns s's mount of the volume nats-auth, if any.
func authMount(s types.ServiceConfig) *types.ServiceVolumeConfig {
	for i, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "nats-auth" {
			return &s.Volumes[i]
		}
	}
	return nil
}

// flagValue returns the argument after flag in args.
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}
