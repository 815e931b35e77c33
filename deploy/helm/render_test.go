package helm_test

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir      = "spool"
	twoPoolsFile  = "spool/ci/two-pools-values.yaml"
	releaseName   = "video"
	releaseNSpace = "spool"
)

// manifests are the objects one render produced, decoded into their API
// types and keyed by name.
type manifests struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	pdbs            map[string]*policyv1.PodDisruptionBudget
	scaledObjects   map[string]*kedav1alpha1.ScaledObject
	configMaps      map[string]*corev1.ConfigMap
	notes           string
}

// readValues reads a values file, as `helm -f` does.
func readValues(t *testing.T, file string) chartutil.Values {
	t.Helper()
	vals, err := chartutil.ReadValuesFile(file)
	if err != nil {
		t.Fatalf("read values %s: %v", file, err)
	}
	return vals
}

// parseValues parses values given inline in a test.
func parseValues(t *testing.T, doc string) chartutil.Values {
	t.Helper()
	vals, err := chartutil.ReadValues([]byte(doc))
	if err != nil {
		t.Fatalf("parse values: %v\n%s", err, doc)
	}
	return vals
}

// render renders the chart as `helm install` would, with vals over the
// chart's defaults: schema validation, then every template. It fails the
// test only on a chart that does not load; a render error is returned.
func render(t *testing.T, vals chartutil.Values) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNSpace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(chrt, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	out, err := engine.Render(chrt, rv)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return out, nil
}

// mustRender renders and decodes, failing the test on any error.
func mustRender(t *testing.T, vals chartutil.Values) *manifests {
	t.Helper()
	out, err := render(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// decode splits every rendered template into its documents and decodes
// each strictly (unknown or duplicate fields are errors) into the API type
// of its kind; a kind the chart should not render is an error too.
func decode(out map[string]string) (*manifests, error) {
	m := &manifests{
		deployments:     map[string]*appsv1.Deployment{},
		services:        map[string]*corev1.Service{},
		secrets:         map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		configMaps:      map[string]*corev1.ConfigMap{},
		scaledObjects:   map[string]*kedav1alpha1.ScaledObject{},
	}
	files := make([]string, 0, len(out))
	for f := range out {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, file := range files {
		base := path.Base(file)
		switch {
		case base == "NOTES.txt":
			m.notes = out[file]
			continue
		case strings.HasPrefix(base, "_"):
			if strings.TrimSpace(out[file]) != "" {
				return nil, fmt.Errorf("%s: a partial rendered output", file)
			}
			continue
		}
		docs := releaseutil.SplitManifests(out[file])
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			if err := m.add(docs[k]); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
		}
	}
	return m, nil
}

// add decodes one document into its type and records it by name.
func (m *manifests) add(doc string) error {
	if strings.TrimSpace(stripComments(doc)) == "" {
		return nil
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		return fmt.Errorf("type of document: %w\n%s", err, doc)
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	var name string
	var err error
	switch gvk {
	case "apps/v1/Deployment":
		name, err = decodeInto(doc, m.deployments)
	case "v1/Service":
		name, err = decodeInto(doc, m.services)
	case "v1/Secret":
		name, err = decodeInto(doc, m.secrets)
	case "v1/ServiceAccount":
		name, err = decodeInto(doc, m.serviceAccounts)
	case "v1/ConfigMap":
		name, err = decodeInto(doc, m.configMaps)
	case "policy/v1/PodDisruptionBudget":
		name, err = decodeInto(doc, m.pdbs)
	case "keda.sh/v1alpha1/ScaledObject":
		name, err = decodeInto(doc, m.scaledObjects)
	default:
		return fmt.Errorf("unexpected kind %q (apiVersion %q)", tm.Kind, tm.APIVersion)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk, name, err)
	}
	return nil
}

// object is a decoded API object: a pointer to a type with ObjectMeta.
type object[T any] interface {
	*T
	GetName() string
}

// decodeInto decodes doc strictly into a new T and files it under its name.
func decodeInto[T any, P object[T]](doc string, into map[string]P) (string, error) {
	obj := P(new(T))
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		return "", fmt.Errorf("strict decode: %w\n%s", err, doc)
	}
	name := obj.GetName()
	if name == "" {
		return "", fmt.Errorf("no metadata.name")
	}
	if _, dup := into[name]; dup {
		return name, fmt.Errorf("rendered twice")
	}
	into[name] = obj
	return name, nil
}

// stripComments drops whole-line YAML comments, such as Helm's
// "# Source:" lines, to tell an empty document from a real one.
func stripComments(doc string) string {
	var b bytes.Buffer
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// envOf returns a container's plain environment variables, NAME: value,
// and the names of those read from a Secret, NAME: secret/key.
func envOf(c corev1.Container) (plain, secret map[string]string) {
	plain, secret = map[string]string{}, map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			plain[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			secret[e.Name] = ref.Name + "/" + ref.Key
		}
	}
	return plain, secret
}

// container returns the one container of a Deployment's pods.
func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers, want 1", d.Name, len(cs))
	}
	return cs[0]
}

func TestMain(m *testing.M) {
	if _, err := os.Stat(path.Join(chartDir, "Chart.yaml")); err != nil {
		fmt.Fprintf(os.Stderr, "run the tests from deploy/helm: %v\n", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}
