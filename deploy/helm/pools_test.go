package helm_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// pool is what a test expects of one rendered GPU pool.
type pool struct {
	name, gpuProduct, backend, models string
	gpus                              int64
	min, max                          int32
	lagThreshold                      string
	longest                           time.Duration
}

// twoPools are the pools of spool/ci/two-pools-values.yaml.
var twoPools = []pool{
	{name: "h100", gpuProduct: "NVIDIA-H100-80GB-HBM3", backend: "python", models: "skyreels-v2-df-14b-720p", gpus: 8, min: 0, max: 6, lagThreshold: "24", longest: 600 * time.Second},
	{name: "l40s", gpuProduct: "NVIDIA-L40S", backend: "cuda", models: "ref-cuda", gpus: 2, min: 1, max: 10, lagThreshold: "4", longest: 180 * time.Second},
}

func TestWorkerPools(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vals  map[string]any
		pools []pool
	}{
		{"defaults", nil, []pool{{name: "default", gpuProduct: "NVIDIA-H100-80GB-HBM3", backend: "cuda", models: "ref-cuda", gpus: 1, min: 0, max: 4, lagThreshold: "2", longest: 300 * time.Second}}},
		{"two pools", readValues(t, twoPoolsFile), twoPools},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustRender(t, tc.vals)
			if len(m.scaledObjects) != len(tc.pools) || len(m.pdbs) != len(tc.pools) {
				t.Fatalf("%d ScaledObjects and %d PDBs for %d pools", len(m.scaledObjects), len(m.pdbs), len(tc.pools))
			}
			for _, p := range tc.pools {
				t.Run(p.name, func(t *testing.T) {
					checkDeployment(t, m, p)
					checkScaledObject(t, m, p)
					checkPDB(t, m, p, tc.pools)
				})
			}
		})
	}
}

func checkDeployment(t *testing.T, m *manifests, p pool) {
	name := "video-spool-worker-" + p.name
	d := m.deployments[name]
	if d == nil {
		t.Fatalf("no Deployment %s", name)
	}
	spec := d.Spec.Template.Spec
	if got := spec.NodeSelector["nvidia.com/gpu.product"]; got != p.gpuProduct {
		t.Errorf("nodeSelector nvidia.com/gpu.product=%q, want %q", got, p.gpuProduct)
	}
	c := container(t, d)
	if got, want := c.Resources.Limits["nvidia.com/gpu"], *resource.NewQuantity(p.gpus, resource.DecimalSI); got.Cmp(want) != 0 {
		t.Errorf("limits nvidia.com/gpu=%s, want %s", got.String(), want.String())
	}
	if _, ok := c.Resources.Requests["nvidia.com/gpu"]; ok {
		t.Errorf("requests nvidia.com/gpu set; it follows the limit")
	}
	plain, _ := envOf(c)
	for k, v := range map[string]string{"SPOOL_WORKER_POOL": p.name, "SPOOL_WORKER_BACKEND": p.backend, "SPOOL_WORKER_MODELS": p.models} {
		if plain[k] != v {
			t.Errorf("%s=%q, want %q", k, plain[k], v)
		}
	}
	drain, err := time.ParseDuration(plain["SPOOL_WORKER_DRAIN_TIMEOUT"])
	if err != nil || drain != p.longest {
		t.Errorf("SPOOL_WORKER_DRAIN_TIMEOUT=%q (%v), want the longest segment, %v", plain["SPOOL_WORKER_DRAIN_TIMEOUT"], err, p.longest)
	}
	if grace := spec.TerminationGracePeriodSeconds; grace == nil || time.Duration(*grace)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %s, want above the drain timeout %v", ptrString(grace), drain)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("replicas %d set; KEDA owns the count", *d.Spec.Replicas)
	}
	if d.Spec.Template.Labels["spool.video/pool"] != p.name {
		t.Errorf("pod label spool.video/pool=%q", d.Spec.Template.Labels["spool.video/pool"])
	}
}

func checkScaledObject(t *testing.T, m *manifests, p pool) {
	name := "video-spool-worker-" + p.name
	so := m.scaledObjects[name]
	if so == nil {
		t.Fatalf("no ScaledObject %s", name)
	}
	ref := so.Spec.ScaleTargetRef
	if ref == nil || ref.Name != name || (ref.Kind != "" && ref.Kind != "Deployment") || m.deployments[ref.Name] == nil {
		t.Errorf("scaleTargetRef %+v, want Deployment %s", ref, name)
	}
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount != p.min || so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount != p.max {
		t.Errorf("replica counts %v..%v, want %d..%d", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount, p.min, p.max)
	}
	// KEDA's scaler errs while the pool's consumer does not exist; a
	// fallback would then move the pool to its replica count.
	if so.Spec.Fallback != nil {
		t.Errorf("fallback %+v, want none", so.Spec.Fallback)
	}
	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("%d triggers, want 1", len(so.Spec.Triggers))
	}
	tr := so.Spec.Triggers[0]
	if tr.Type != "nats-jetstream" {
		t.Errorf("trigger type %q, want nats-jetstream", tr.Type)
	}
	for k, v := range map[string]string{
		"natsServerMonitoringEndpoint": "nats-headless.nats.svc:8222", "account": "$G", "stream": "SPOOL_SEGMENTS",
		"consumer": "pool-" + p.name, "lagThreshold": p.lagThreshold,
	} {
		if tr.Metadata[k] != v {
			t.Errorf("trigger %s=%q, want %q", k, tr.Metadata[k], v)
		}
	}
}

// checkPDB checks that the pool's budget selects its pods and no other
// pool's, nor any other spool pod.
func checkPDB(t *testing.T, m *manifests, p pool, all []pool) {
	name := "video-spool-worker-" + p.name
	pdb := m.pdbs[name]
	if pdb == nil {
		t.Fatalf("no PodDisruptionBudget %s", name)
	}
	if pdb.Spec.MaxUnavailable == nil {
		t.Errorf("maxUnavailable unset")
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("selector %v: %v", pdb.Spec.Selector, err)
	}
	for dname, d := range m.deployments {
		want := dname == name
		if got := sel.Matches(labels.Set(d.Spec.Template.Labels)); got != want {
			t.Errorf("PDB %s selects the pods of %s: %v, want %v", name, dname, got, want)
		}
		// The Deployment's own selector must not reach another pool's
		// pods either, or two pools would fight over them.
		dsel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			t.Fatalf("%s selector: %v", dname, err)
		}
		if dname != name && dsel.Matches(labels.Set(m.deployments[name].Spec.Template.Labels)) {
			t.Errorf("Deployment %s selects the pods of pool %s", dname, p.name)
		}
	}
	if len(all) > 1 && len(m.pdbs) != len(all) {
		t.Errorf("%d PDBs for %d pools", len(m.pdbs), len(all))
	}
}

// TestPoolValidation renders bad pool lists and expects the chart to
// refuse them with a message that names the problem.
func TestPoolValidation(t *testing.T) {
	poolDoc := func(names ...string) string {
		var b strings.Builder
		b.WriteString("workerPools:\n")
		for _, n := range names {
			fmt.Fprintf(&b, "  - {name: %q, gpuProduct: NVIDIA-L40S, models: [ref-cuda], maxReplicas: 2, longestSegmentSeconds: 60}\n", n)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, values, want string
	}{
		{"upper case", poolDoc("H100"), `workerPools[0] ("H100"): the pool name must be a DNS-1123 label`},
		{"dot", poolDoc("h100.fast"), `workerPools[0] ("h100.fast"): the pool name must be a DNS-1123 label`},
		{"trailing dash", poolDoc("ok", "l40s-"), `workerPools[1] ("l40s-"): the pool name must be a DNS-1123 label`},
		{"empty", poolDoc(""), `workerPools[0].name is required`},
		{"duplicate", poolDoc("h100", "l40s", "h100"), `workerPools[2] ("h100"): duplicate pool name; workerPools[0] has the same name`},
		{"too long", poolDoc(strings.Repeat("a", 50)), `over 63`},
		{"not served", "dispatcher: {pools: [h100]}\n" + poolDoc("h100", "l40s"), `pool "l40s" is missing from dispatcher.pools`},
		{"max below min", "workerPools:\n  - {name: a, gpuProduct: X, models: [ref-cuda], minReplicas: 3, maxReplicas: 2, longestSegmentSeconds: 60}\n", `workerPools[0] ("a").maxReplicas is required, ≥ 1 and ≥ minReplicas (3)`},
		{"no gpu product", "workerPools:\n  - {name: a, gpuProduct: '', models: [ref-cuda], maxReplicas: 2, longestSegmentSeconds: 60}\n", `gpuProduct`},
		{"no models", "workerPools:\n  - {name: a, gpuProduct: X, maxReplicas: 2, longestSegmentSeconds: 60}\n", `models`},
		{"empty models", "workerPools:\n  - {name: a, gpuProduct: X, models: [], maxReplicas: 2, longestSegmentSeconds: 60}\n", `models`},
		{"gateway pool without models", "gateway: {pools: [h200]}\n" + poolDoc("h100"), `gateway.pools: pool "h200" is not in workerPools, where the models it serves are declared`},
		{"dispatcher pool without models", "dispatcher: {pools: [h100, h200]}\n" + poolDoc("h100"), `dispatcher.pools: pool "h200" is not in workerPools`},
		{"schema: zero margin", "worker: {drainMarginSeconds: 0}\n", `drainMarginSeconds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, parseValues(t, tc.values))
			if err == nil {
				t.Fatalf("rendered; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// ptrString prints an optional number.
func ptrString(p *int64) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// TestWorkerTailWait: worker.tailWait and worker.storeRetry reach every
// pool's workers as SPOOL_WORKER_TAIL_WAIT and SPOOL_WORKER_STORE_RETRY;
// left empty, the variables are unset.
func TestWorkerTailWait(t *testing.T) {
	for _, tc := range []struct{ values, name, want string }{
		{"", "SPOOL_WORKER_TAIL_WAIT", ""}, {"worker: {tailWait: 90s}", "SPOOL_WORKER_TAIL_WAIT", "90s"},
		{"", "SPOOL_WORKER_STORE_RETRY", ""}, {"worker: {storeRetry: 20s}", "SPOOL_WORKER_STORE_RETRY", "20s"},
	} {
		var vals chartutil.Values
		if tc.values != "" {
			vals = parseValues(t, tc.values)
		}
		plain, _ := envOf(container(t, mustRender(t, vals).deployments["video-spool-worker-default"]))
		if got, set := plain[tc.name]; got != tc.want || set != (tc.want != "") {
			t.Errorf("values %q: %s=%q (set %v), want %q", tc.values, tc.name, got, set, tc.want)
		}
	}
}

// TestWorkerStallWatchdog: worker.stallTimeout and worker.stallGrace reach
// every pool's workers as SPOOL_WORKER_STALL_TIMEOUT and
// SPOOL_WORKER_STALL_GRACE; left empty, the variables are unset.
func TestWorkerStallWatchdog(t *testing.T) {
	cases := []struct{ values, timeout, grace string }{
		{"", "", ""},
		{"worker: {stallTimeout: 10m}", "10m", ""},
		{"worker: {stallTimeout: 2m, stallGrace: 15s}", "2m", "15s"},
	}
	for _, tc := range cases {
		var vals chartutil.Values
		if tc.values != "" {
			vals = parseValues(t, tc.values)
		}
		plain, _ := envOf(container(t, mustRender(t, vals).deployments["video-spool-worker-default"]))
		for name, want := range map[string]string{"SPOOL_WORKER_STALL_TIMEOUT": tc.timeout, "SPOOL_WORKER_STALL_GRACE": tc.grace} {
			if got, set := plain[name]; got != want || set != (want != "") {
				t.Errorf("values %q: %s=%q (set %v), want %q", tc.values, name, got, set, want)
			}
		}
	}
}

// TestPoolModels: each pool's models reach its workers (SPOOL_WORKER_MODELS)
// and the dispatcher's and the gateway's declaration of the pool
// (SPOOL_*_POOLS), in the order of workerPools; a service's own list of
// pools narrows the declaration.
func TestPoolModels(t *testing.T) {
	doc := `workerPools:
  - {name: l40s, gpuProduct: NVIDIA-L40S, models: [skyreels-v2-df-1.3b-540p], maxReplicas: 2, longestSegmentSeconds: 60}
  - {name: h100, gpuProduct: NVIDIA-H100-80GB-HBM3, models: [skyreels-v2-df-14b-720p, ref-cuda], maxReplicas: 2, longestSegmentSeconds: 60}
gateway: {pools: [h100]}
`
	m := mustRender(t, parseValues(t, doc))
	want := map[string]string{
		"video-spool-dispatcher": "l40s:skyreels-v2-df-1.3b-540p;h100:skyreels-v2-df-14b-720p,ref-cuda",
		"video-spool-gateway":    "h100:skyreels-v2-df-14b-720p,ref-cuda",
	}
	for name, decl := range want {
		plain, _ := envOf(container(t, m.deployments[name]))
		svc := strings.ToUpper(serviceOf(m.deployments[name]))
		if got := plain["SPOOL_"+svc+"_POOLS"]; got != decl {
			t.Errorf("%s: SPOOL_%s_POOLS=%q, want %q", name, svc, got, decl)
		}
	}
	plain, _ := envOf(container(t, m.deployments["video-spool-worker-h100"]))
	if plain["SPOOL_WORKER_MODELS"] != "skyreels-v2-df-14b-720p,ref-cuda" || plain["SPOOL_WORKER_BACKEND"] != "" {
		t.Errorf("h100 workers: %v", plain)
	}
}

// TestCatalogValue: a catalog in the values becomes a ConfigMap that the
// dispatcher, the gateway and the workers mount and name in SPOOL_CATALOG
// (and a change of it rolls their pods); without one, nothing is rendered
// and the built-in catalog serves.
func TestCatalogValue(t *testing.T) {
	m := mustRender(t, nil)
	if len(m.configMaps) != 0 {
		t.Fatalf("no catalog value, yet %d ConfigMaps", len(m.configMaps))
	}
	for name, d := range m.deployments {
		if plain, _ := envOf(container(t, d)); plain["SPOOL_CATALOG"] != "" {
			t.Errorf("%s: SPOOL_CATALOG set without a catalog", name)
		}
	}
	catalog := "models:\n  ref-cuda:\n    description: x\n"
	m = mustRender(t, parseValues(t, "catalog: |\n  models:\n    ref-cuda:\n      description: x\n"))
	cm := m.configMaps["video-spool-catalog"]
	if cm == nil || strings.TrimSpace(cm.Data["catalog.yaml"]) != strings.TrimSpace(catalog) {
		t.Fatalf("catalog ConfigMap %+v", cm)
	}
	for name, d := range m.deployments {
		svc := serviceOf(d)
		plain, _ := envOf(container(t, d))
		if svc == "nats-topology" {
			continue // spoolctl nats declare reads no catalog
		}
		reads := svc != "stitcher"
		mounted := slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
			return v.ConfigMap != nil && v.ConfigMap.Name == "video-spool-catalog"
		}) && slices.ContainsFunc(container(t, d).VolumeMounts, func(v corev1.VolumeMount) bool {
			return v.Name == "catalog" && v.MountPath == "/etc/spool/catalog"
		})
		if got := plain["SPOOL_CATALOG"] == "/etc/spool/catalog/catalog.yaml" && mounted; got != reads {
			t.Errorf("%s: catalog mounted and named %v, want %v", name, got, reads)
		}
		if d.Spec.Template.Annotations["checksum/catalog"] == "" {
			t.Errorf("%s: no checksum/catalog annotation", name)
		}
	}
}
