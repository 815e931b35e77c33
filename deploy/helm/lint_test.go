package helm_test

import (
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestLint runs the linter behind `helm lint --strict`, with the default
// values and with each ci/*-values.yaml: the chart's metadata, values and
// schema, and every template rendered and parsed. As with --strict, a
// warning fails as an error does; informational notes (such as the missing
// icon) are logged.
func TestLint(t *testing.T) {
	cases := []struct {
		name string
		vals map[string]any
	}{{"defaults", map[string]any{}}}
	ci, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(ci) == 0 {
		t.Fatalf("no %s/ci/*-values.yaml (%v)", chartDir, err)
	}
	for _, f := range ci {
		cases = append(cases, struct {
			name string
			vals map[string]any
		}{filepath.Base(f), readValues(t, f)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube, err := chartutil.ParseKubeVersion("v1.33.0")
			if err != nil {
				t.Fatal(err)
			}
			linter := lint.AllWithKubeVersion(chartDir, tc.vals, releaseNSpace, kube)
			for _, msg := range linter.Messages {
				if msg.Severity >= support.WarningSev {
					t.Errorf("lint: %v", msg)
				} else {
					t.Logf("lint: %v", msg)
				}
			}
			if linter.HighestSeverity >= support.WarningSev {
				t.Errorf("lint: highest severity %d, want below %d (warning)", linter.HighestSeverity, support.WarningSev)
			}
		})
	}
}
