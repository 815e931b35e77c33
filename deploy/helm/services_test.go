package helm_test

import (
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// knownEnv lists the SPOOL_* variables each service reads, as
// `bin/spool-<svc> -h` (after `make build`) prints them: a variable the
// chart sets that is not listed here is a typo the service would ignore.
// Add a variable here when a service gains one.
var knownEnv = map[string][]string{
	"dispatcher": {"POOLS", "MAX_ATTEMPTS", "RETRY_BACKOFF", "RECONCILE_EVERY", "RUNNING_STALE", "QUEUED_STALE",
		"POOL_WINDOW", "LIVE_AHEAD", "OUTBOX_BATCH", "SUBMIT_BATCH", "INTAKE_PARALLEL", "SEGMENT_DEADLINE", "CODEC", "REDRIVE_AFTER",
		"QUOTA_RUNNING_SEGMENTS"},
	"stitcher": {"ID", "PART_SIZE", "OPEN_JOBS", "PARALLEL", "LEASE", "LIVE_WINDOW", "CODEC", "MEMORY_LIMIT_MIB", "SWEEP_EVERY"},
	"gateway": {"ADDR", "ADMIN_KEY", "URL_KEY", "URL_EXPIRY", "POOLS", "MAX_BODY", "BATCH_MAX", "BATCH_MAX_BODY", "UPLOAD_MAX_BYTES", "UPLOAD_MAX_PIXELS", "UPLOAD_URL_EXPIRY", "UPLOAD_PART_SIZE", "UPLOAD_PARALLEL", "UPLOAD_PROBE_TIMEOUT",
		"QUOTA_QUEUED_JOBS", "QUOTA_DAILY_SECONDS", "RATE", "BURST",
		"S3_PUBLIC_ENDPOINT", "DOWNLOADS"},
	"worker": {"ID", "NODE", "POOL", "BACKEND", "MODELS", "BACKEND_PARAMS", "PLUGIN_DIR", "WEIGHTS_DIR", "MODELS_DIR", "SLOTS", "HEARTBEAT", "TAIL_WAIT", "STORE_RETRY",
		"DRAIN_TIMEOUT", "MIN_FREE_MIB", "REGISTER_EVERY", "PIPELINE", "PREFETCH", "ENCODER", "CODEC", "STALL_TIMEOUT", "STALL_GRACE"},
}

// natsReaders read libs/config's NATS variables: the services, and
// spoolctl in the topology keeper (component nats-topology).
var natsReaders = []string{"dispatcher", "stitcher", "gateway", "worker", "nats-topology"}

// sharedEnv are the variables of libs/config, by which services read them.
var sharedEnv = map[string][]string{
	"SPOOL_SERVICE_NAME": {"dispatcher", "stitcher", "gateway", "worker"}, "SPOOL_LOG_LEVEL": {"dispatcher", "stitcher", "gateway", "worker"},
	"SPOOL_METRICS_ADDR": {"dispatcher", "stitcher", "gateway", "worker"}, "SPOOL_NATS_URL": natsReaders,
	"SPOOL_NATS_CREDS": natsReaders, "SPOOL_NATS_CLIENT_NAME": natsReaders,
	"SPOOL_NATS_USER": natsReaders, "SPOOL_NATS_PASSWORD": natsReaders, "SPOOL_NATS_PASSWORD_FILE": natsReaders,
	"SPOOL_NATS_TLS_CA": natsReaders, "SPOOL_NATS_TLS_CERT": natsReaders, "SPOOL_NATS_TLS_KEY": natsReaders,
	"SPOOL_NATS_ACK_WAIT": natsReaders, "SPOOL_NATS_REPLICAS": natsReaders,
	"SPOOL_PG_DSN": {"dispatcher", "stitcher", "gateway"}, "SPOOL_PG_MAX_CONNS": {"dispatcher", "stitcher", "gateway"},
	"SPOOL_S3_ENDPOINT": {"dispatcher", "stitcher", "gateway", "worker"}, "SPOOL_S3_ACCESS_KEY": {"dispatcher", "stitcher", "gateway", "worker"},
	"SPOOL_S3_SECRET_KEY": {"dispatcher", "stitcher", "gateway", "worker"}, "SPOOL_S3_BUCKET": {"dispatcher", "stitcher", "gateway", "worker"},
	"SPOOL_S3_REGION": {"dispatcher", "stitcher", "gateway", "worker"}, "SPOOL_S3_TLS": {"dispatcher", "stitcher", "gateway", "worker"},
	"SPOOL_RETENTION_JOBS": {"dispatcher"}, "SPOOL_RETENTION_UPLOADS": {"dispatcher"}, "SPOOL_RETENTION_TENANTS": {"dispatcher"},
	"SPOOL_RETENTION_INTERVAL": {"dispatcher"}, "SPOOL_RETENTION_LEASE": {"dispatcher"}, "SPOOL_RETENTION_BATCH": {"dispatcher"},
	"SPOOL_CATALOG": {"dispatcher", "gateway", "worker"},
}

// knows reports whether service reads variable name.
func knows(service, name string) bool {
	if svcs, ok := sharedEnv[name]; ok {
		return slices.Contains(svcs, service)
	}
	own, ok := strings.CutPrefix(name, "SPOOL_"+strings.ToUpper(service)+"_")
	return ok && slices.Contains(knownEnv[service], own)
}

// serviceOf names the spool service of a Deployment by its component label.
func serviceOf(d *appsv1.Deployment) string {
	return d.Spec.Template.Labels["app.kubernetes.io/component"]
}

func TestDefaultValuesRender(t *testing.T) {
	m := mustRender(t, nil)
	var names []string
	for n := range m.deployments {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"video-spool-dispatcher", "video-spool-gateway", "video-spool-nats-topology", "video-spool-stitcher", "video-spool-worker-default"}
	if !slices.Equal(names, want) {
		t.Fatalf("deployments %v, want %v", names, want)
	}
	if len(m.scaledObjects) != 1 || len(m.pdbs) != 1 || len(m.services) != 1 || len(m.serviceAccounts) != 1 {
		t.Fatalf("rendered %d ScaledObjects, %d PDBs, %d Services, %d ServiceAccounts; want one each",
			len(m.scaledObjects), len(m.pdbs), len(m.services), len(m.serviceAccounts))
	}
	// The chart's Secret, a password Secret per NATS user (admin, client,
	// dispatcher, gateway, stitcher, worker@default) and the server's block.
	if len(m.secrets) != 8 {
		t.Errorf("rendered %d Secrets, want 8", len(m.secrets))
	}
	sec := m.secrets["video-spool-secrets"]
	if sec == nil {
		t.Fatalf("no Secret video-spool-secrets")
	}
	for _, k := range []string{"pg-dsn", "s3-secret-key", "gateway-admin-key", "gateway-url-key"} {
		if sec.StringData[k] == "" {
			t.Errorf("Secret key %s is empty", k)
		}
	}
	if !strings.Contains(m.notes, "video-spool-worker-default") {
		t.Errorf("NOTES.txt does not list the pool:\n%s", m.notes)
	}
}

// TestServiceConfig checks what every spool Deployment shares: the image,
// the metrics port and its scrape annotations, the SPOOL_* and OTEL_*
// variables, and secrets only by reference.
func TestServiceConfig(t *testing.T) {
	for _, tc := range []struct{ name, values string }{{"defaults", ""}, {"two pools", twoPoolsFile}, {"host models", hostModelsFile}} {
		t.Run(tc.name, func(t *testing.T) {
			var vals map[string]any
			if tc.values != "" {
				vals = readValues(t, tc.values)
			}
			m := mustRender(t, vals)
			secretName := "video-spool-secrets"
			if tc.values != "" {
				secretName = "spool-prod"
				if _, ok := m.secrets["video-spool-secrets"]; ok {
					t.Errorf("existingSecret set, yet the chart renders its Secret")
				}
			}
			for name, d := range m.deployments {
				svc := serviceOf(d)
				if svc == "nats-topology" {
					continue // spoolctl, no service: TestNATSTopologyKeeper
				}
				c := container(t, d)
				if want := "spool/" + svc + ":0.1.0"; c.Image != want {
					t.Errorf("%s: image %q, want %q", name, c.Image, want)
				}
				if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 9464 }) {
					t.Errorf("%s: no container port metrics 9464: %+v", name, c.Ports)
				}
				ann := d.Spec.Template.Annotations
				if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "9464" || ann["prometheus.io/path"] != "/metrics" {
					t.Errorf("%s: scrape annotations %v", name, ann)
				}
				plain, secret := envOf(c)
				for k, v := range map[string]string{
					"SPOOL_METRICS_ADDR": ":9464", "SPOOL_NATS_URL": "nats://nats.nats.svc:4222", "SPOOL_NATS_REPLICAS": "3",
					"OTEL_SERVICE_NAME": "spool-" + svc, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc:4318",
				} {
					if plain[k] != v {
						t.Errorf("%s: %s=%q, want %q", name, k, plain[k], v)
					}
				}
				for k := range plain {
					if strings.HasPrefix(k, "SPOOL_") && !knows(svc, k) {
						t.Errorf("%s: sets %s, which spool-%s does not read", name, k, svc)
					}
				}
				for k, ref := range secret {
					if !knows(svc, k) {
						t.Errorf("%s: sets %s, which spool-%s does not read", name, k, svc)
					}
					if !strings.HasPrefix(ref, secretName+"/") {
						t.Errorf("%s: %s from %s, want Secret %s", name, k, ref, secretName)
					}
				}
				for _, k := range []string{"SPOOL_PG_DSN", "SPOOL_S3_SECRET_KEY", "SPOOL_GATEWAY_ADMIN_KEY", "SPOOL_GATEWAY_URL_KEY"} {
					if _, ok := plain[k]; ok {
						t.Errorf("%s: secret %s given as a plain value", name, k)
					}
					if _, ok := secret[k]; !ok && knows(svc, k) {
						t.Errorf("%s: %s missing", name, k)
					}
				}
				if svc == "dispatcher" || svc == "gateway" {
					if got := plain["SPOOL_"+strings.ToUpper(svc)+"_POOLS"]; got != poolsOf(m) {
						t.Errorf("%s: pools %q, want %q", name, got, poolsOf(m))
					}
				}
			}
		})
	}
}

// poolsOf declares the rendered worker pools, sorted, each with the models
// its workers load, "pool:model,model;pool:model": what the dispatcher and
// the gateway must route by.
func poolsOf(m *manifests) string {
	var pools []string
	for _, d := range m.deployments {
		if p := d.Spec.Template.Labels["spool.video/pool"]; p != "" {
			plain, _ := envOf(d.Spec.Template.Spec.Containers[0])
			pools = append(pools, p+":"+plain["SPOOL_WORKER_MODELS"])
		}
	}
	sort.Strings(pools)
	return strings.Join(pools, ";")
}

func TestGateway(t *testing.T) {
	m := mustRender(t, nil)
	d := m.deployments["video-spool-gateway"]
	svc := m.services["video-spool-gateway"]
	if d == nil || svc == nil {
		t.Fatalf("gateway Deployment %v, Service %v", d != nil, svc != nil)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort != intstr.FromString("http") {
		t.Errorf("Service ports %+v, want 8080 to http", svc.Spec.Ports)
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service selects %s=%s; the gateway's pods have %q", k, v, d.Spec.Template.Labels[k])
		}
	}
	c := container(t, d)
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" && p.ContainerPort == 8080 }) {
		t.Errorf("no container port http 8080: %+v", c.Ports)
	}
	if plain, _ := envOf(c); plain["SPOOL_GATEWAY_ADDR"] != ":8080" {
		t.Errorf("SPOOL_GATEWAY_ADDR=%q, want :8080", plain["SPOOL_GATEWAY_ADDR"])
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" || p.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s probe %+v, want GET /health on http", name, p)
		}
	}
	if c.LivenessProbe == nil {
		t.Errorf("no liveness probe")
	}
}

// TestS3UsersPerService: with s3.users, each service named there reaches
// MinIO as its own user, its secret key read from its own key of the
// Secret; a service not named keeps the shared one. A user without a
// secret key is refused when the chart makes the Secret.
func TestS3UsersPerService(t *testing.T) {
	m := mustRender(t, parseValues(t, `
s3:
  users: {dispatcher: spool-dispatcher, gateway: spool-gateway, worker: spool-worker}
secrets:
  s3UserSecretKeys: {dispatcher: d-secret, gateway: g-secret, worker: w-secret}
`))
	sec := m.secrets["video-spool-secrets"]
	if sec == nil {
		t.Fatal("no Secret video-spool-secrets")
	}
	for svc, want := range map[string]string{"dispatcher": "d-secret", "gateway": "g-secret", "worker": "w-secret"} {
		if got := sec.StringData["s3-secret-key-"+svc]; got != want {
			t.Errorf("Secret key s3-secret-key-%s = %q, want %q", svc, got, want)
		}
	}
	if _, ok := sec.StringData["s3-secret-key-stitcher"]; ok {
		t.Error("a secret key for the stitcher, which has no user of its own")
	}
	for name, d := range m.deployments {
		svc := serviceOf(d)
		if svc == "nats-topology" { // the topology keeper touches no object
			continue
		}
		plain, secret := envOf(container(t, d))
		access, key := "spool-"+svc, "video-spool-secrets/s3-secret-key-"+svc
		if svc == "stitcher" {
			access, key = "spool", "video-spool-secrets/s3-secret-key"
		}
		if plain["SPOOL_S3_ACCESS_KEY"] != access || secret["SPOOL_S3_SECRET_KEY"] != key {
			t.Errorf("%s: SPOOL_S3_ACCESS_KEY=%q, SPOOL_S3_SECRET_KEY from %s; want %q from %s", name,
				plain["SPOOL_S3_ACCESS_KEY"], secret["SPOOL_S3_SECRET_KEY"], access, key)
		}
	}
	_, err := render(t, parseValues(t, "s3:\n  users: {stitcher: spool-stitcher}\n"))
	if err == nil || !strings.Contains(err.Error(), "secrets.s3UserSecretKeys.stitcher") {
		t.Fatalf("a user without a secret key: %v, want an error naming secrets.s3UserSecretKeys.stitcher", err)
	}
	if _, err := render(t, parseValues(t, "s3:\n  users: {janitor: spool-janitor}\n")); err == nil {
		t.Fatal("s3.users.janitor: want a schema error")
	}
}
