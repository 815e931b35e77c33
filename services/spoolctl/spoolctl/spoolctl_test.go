package spoolctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
)

func TestRenderCommandLine(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	_ = os.WriteFile(spec, []byte(`{"prompt":"x","durationFrames":20,"windowFrames":13,"overlapFrames":4,"width":64,"height":64,"steps":2,"fps":24}`), 0o644)
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"prompt":"x","durationFrames":20,"width":63,"height":64}`), 0o644)
	out := filepath.Join(dir, "out.mp4")
	// The spec's model chooses the engine: the 540p SkyReels-V2 model runs
	// on its python backend or not at all, never on ref.
	sky := filepath.Join(dir, "sky.json")
	_ = os.WriteFile(sky, []byte(`{"prompt":"x","durationFrames":20,"model":"skyreels-v2-df-1.3b-540p","steps":2}`), 0o644)
	// A catalog file replaces the shipped one: its sim model renders, the
	// shipped default model (ref) is gone.
	catalog := filepath.Join(dir, "catalog.yaml")
	_ = os.WriteFile(catalog, []byte(`models:
  tiny-sim:
    description: sim, small
    backend: sim
    params: {}
    frame_align: 1
    max_window: 17
    steps: 2
    guidance: 5
    shift: 0
    fps: 12
    gpu_memory_mib: 0
    audio_sample_rate: 0
    talking_head: false
    step_time: 0s
    default_resolution: tiny
    any_size: false
    resolutions:
      - {name: tiny, width: 96, height: 64, window: 13, overlap: 4}
`), 0o644)
	tiny := filepath.Join(dir, "tiny.json")
	_ = os.WriteFile(tiny, []byte(`{"prompt":"x","durationFrames":20,"model":"tiny-sim"}`), 0o644)
	cases := []struct {
		args    []string
		wantErr string
		stdout  string
	}{
		{[]string{"render", "--local", spec, "-o", out, "-q"}, "", "20 frames in 2 segments"},
		{[]string{"render", spec, "--local", "-o", out, "-q"}, "", "20 frames"},
		{[]string{"render", spec}, "want --local", ""},
		{[]string{"render", "--local", "-model", "nope", spec, "-q"}, `-model "nope" is not in the catalog`, ""},
		{[]string{"render", "--local", "-backend", "ref", "-model", "skyreels-v2-df-tiny", spec, "-q"},
			"-model skyreels-v2-df-tiny runs on backend python, not on -backend ref", ""},
		{[]string{"render", "--local", "-backend", "tpu", spec, "-q"}, `-backend "tpu": no model of the catalog runs on it`, ""},
		{[]string{"render", "--local", "-backend", "python", spec, "-q"}, `the spec's model "" does not run on -backend python`, ""},
		{[]string{"dev", "-model", "nope"}, `-model "nope" is not in the catalog`, ""},
		{[]string{"render", "--local", bad, "-q"}, "width", ""},
		{[]string{"render", "--local", sky, "-o", out, "-q"}, "has no folder skyreels-v2-df-1.3b-540p for model skyreels-v2-df-1.3b-540p", ""},
		{[]string{"render", "--local", "-catalog", catalog, tiny, "-o", out, "-q"}, "", "20 frames in 2 segments"},
		{[]string{"render", "--local", "-catalog", catalog, spec, "-o", out, "-q"}, "model: \"ref\" is not allowed; allowed: a model of the catalog: tiny-sim", ""},
		{[]string{"render", "--local", "-catalog", filepath.Join(dir, "none.yaml"), spec, "-q"}, "none.yaml: no such file", ""},
		{[]string{"render", "--local", filepath.Join(dir, "missing.json")}, "no such file", ""},
		{[]string{"frobnicate"}, "unknown command", ""},
		{[]string{"-h"}, "", ""},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := spoolctl.Main(context.Background(), c.args, &stdout, &stderr)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%v: %v (%s)", c.args, err, stderr.String())
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.wantErr)
		case !strings.Contains(stdout.String(), c.stdout):
			t.Errorf("%v: stdout %q, want %q", c.args, stdout.String(), c.stdout)
		}
	}
}
