package helm_test

import (
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	corev1 "k8s.io/api/core/v1"
)

const hostModelsFile = "spool/ci/host-models-values.yaml"

// modelVolume is what a test expects of one pool's model volume: the claim
// or the host path mounted at /models, or neither.
type modelVolume struct {
	claim, hostPath string
}

// TestModelVolume: a pool's modelVolume, an existing claim or a host path,
// becomes the pod's volume "models", mounted read-only at /models in the
// worker container, which SPOOL_WORKER_MODELS_DIR names next to the pool's
// models; a pool without one has neither. Every worker runs offline from
// any hub.
func TestModelVolume(t *testing.T) {
	for _, tc := range []struct {
		name, file, deployment, models string
		want                           modelVolume
	}{
		{"claim", twoPoolsFile, "video-spool-worker-h100", "skyreels-v2-df-14b-720p", modelVolume{claim: "spool-models"}},
		{"no volume beside a claim", twoPoolsFile, "video-spool-worker-l40s", "ref-cuda", modelVolume{}},
		{"host path", hostModelsFile, "video-spool-worker-l40s", "skyreels-v2-df-1.3b-540p", modelVolume{hostPath: "/srv/spool/models"}},
		{"defaults", "", "video-spool-worker-default", "ref-cuda", modelVolume{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vals chartutil.Values
			if tc.file != "" {
				vals = readValues(t, tc.file)
			}
			d := mustRender(t, vals).deployments[tc.deployment]
			if d == nil {
				t.Fatalf("no Deployment %s", tc.deployment)
			}
			checkModelVolume(t, d.Spec.Template.Spec, tc.want)
			c := container(t, d)
			plain, _ := envOf(c)
			wantDir := ""
			if tc.want != (modelVolume{}) {
				wantDir = "/models"
			}
			if got, set := plain["SPOOL_WORKER_MODELS_DIR"]; got != wantDir || set != (wantDir != "") {
				t.Errorf("SPOOL_WORKER_MODELS_DIR=%q (set %v), want %q", got, set, wantDir)
			}
			if plain["SPOOL_WORKER_MODELS"] != tc.models {
				t.Errorf("SPOOL_WORKER_MODELS=%q, want %q", plain["SPOOL_WORKER_MODELS"], tc.models)
			}
			if plain["HF_HUB_OFFLINE"] != "1" {
				t.Errorf("HF_HUB_OFFLINE=%q, want 1: a worker must never download weights", plain["HF_HUB_OFFLINE"])
			}
			checkUniqueEnv(t, c)
		})
	}
}

// checkModelVolume checks the pod's volume "models" and the container's
// mount of it against want (no volume, no mount when want is empty).
func checkModelVolume(t *testing.T, spec corev1.PodSpec, want modelVolume) {
	t.Helper()
	i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "models" })
	mounts := slices.DeleteFunc(slices.Clone(spec.Containers[0].VolumeMounts), func(m corev1.VolumeMount) bool {
		return m.Name != "models" && m.MountPath != "/models"
	})
	if want == (modelVolume{}) {
		if i >= 0 || len(mounts) != 0 {
			t.Errorf("no modelVolume, yet volume %+v and mounts %+v", spec.Volumes, mounts)
		}
		return
	}
	if i < 0 {
		t.Fatalf("no volume models in %+v", spec.Volumes)
	}
	src := spec.Volumes[i].VolumeSource
	switch {
	case want.claim != "":
		if src.PersistentVolumeClaim == nil || src.PersistentVolumeClaim.ClaimName != want.claim || !src.PersistentVolumeClaim.ReadOnly || src.HostPath != nil {
			t.Errorf("volume models %+v, want claim %s read-only and nothing else", src, want.claim)
		}
	default:
		hp := src.HostPath
		if hp == nil || hp.Path != want.hostPath || hp.Type == nil || *hp.Type != corev1.HostPathDirectory || src.PersistentVolumeClaim != nil {
			t.Errorf("volume models %+v, want host path %s of type Directory and nothing else", src, want.hostPath)
		}
	}
	if len(mounts) != 1 || mounts[0].Name != "models" || mounts[0].MountPath != "/models" || !mounts[0].ReadOnly || mounts[0].SubPath != "" {
		t.Errorf("mounts of models or at /models %+v, want one: models at /models, read-only", mounts)
	}
}

// checkUniqueEnv fails on a variable given twice: the last would silently win.
func checkUniqueEnv(t *testing.T, c corev1.Container) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			t.Errorf("%s is set twice", e.Name)
		}
		seen[e.Name] = true
	}
}

// TestHubOfflineOverride: env may set HF_HUB_OFFLINE (e.g. to 0 on a
// development cluster); the chart then does not set it again.
func TestHubOfflineOverride(t *testing.T) {
	for _, tc := range []struct{ values, want string }{
		{"worker: {env: {HF_HUB_OFFLINE: '0'}}", "0"},
		{"workerPools:\n  - {name: a, gpuProduct: X, models: [ref-cuda], maxReplicas: 1, longestSegmentSeconds: 60, env: {HF_HUB_OFFLINE: '0'}}\n", "0"},
	} {
		for _, d := range mustRender(t, parseValues(t, tc.values)).deployments {
			if serviceOf(d) != "worker" {
				continue
			}
			c := container(t, d)
			if plain, _ := envOf(c); plain["HF_HUB_OFFLINE"] != tc.want {
				t.Errorf("values %q: HF_HUB_OFFLINE=%q, want %q", tc.values, plain["HF_HUB_OFFLINE"], tc.want)
			}
			checkUniqueEnv(t, c)
		}
	}
}

// schemaModelVolume is where the schema's refusal of a pool's modelVolume points.
const schemaModelVolume = "at '/workerPools/0/modelVolume"

// TestModelVolumeRefused: a modelVolume must name exactly one source, an
// existing claim or an absolute host path, and nothing else may take its
// volume name or mount path; the schema or the templates refuse the rest,
// naming modelVolume.
func TestModelVolumeRefused(t *testing.T) {
	pool := func(extra string) string {
		return "workerPools:\n  - {name: a, gpuProduct: X, models: [skyreels-v2-df-1.3b-540p], maxReplicas: 1, longestSegmentSeconds: 60, " + extra + "}\n"
	}
	for _, tc := range []struct{ name, values, want string }{
		{"claim and host path", pool("modelVolume: {claimName: spool-models, hostPath: /srv/models}"), schemaModelVolume},
		{"neither", pool("modelVolume: {}"), schemaModelVolume},
		{"empty claim", pool("modelVolume: {claimName: ''}"), schemaModelVolume},
		{"relative host path", pool("modelVolume: {hostPath: srv/models}"), schemaModelVolume},
		{"unknown field", pool("modelVolume: {claimName: spool-models, readOnly: false}"), schemaModelVolume},
		{"not a map", pool("modelVolume: spool-models"), schemaModelVolume},
		{"volume named models", pool("modelVolume: {claimName: spool-models}, volumes: [{name: models, emptyDir: {}}]"),
			`workerPools[0] ("a"): a volume is named models, the name of the pool's modelVolume`},
		{"mount at /models", pool("modelVolume: {hostPath: /srv/models}, volumeMounts: [{name: cache, mountPath: /models/}]"),
			`workerPools[0] ("a"): volumeMounts mounts cache at /models, where the pool's modelVolume is mounted`},
		{"worker volume named models", "worker: {volumes: [{name: models, emptyDir: {}}]}\n" + pool("modelVolume: {claimName: spool-models}"),
			`a volume is named models`},
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
