package jobspec_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/jobspec"
)

// tinyModel is a complete, valid catalog of one model, which the table
// below breaks one field at a time.
const tinyModel = `models:
  tiny-1.0:
    description: a test model
    backend: python
    params: {module: tiny}
    frame_align: 4
    max_window: 33
    steps: 8
    guidance: 5
    shift: 3
    fps: 16
    gpu_memory_mib: 0
    audio_sample_rate: 0
    talking_head: false
    step_time: 100ms
    default_resolution: small
    any_size: false
    resolutions:
      - {name: small, width: 128, height: 96, window: 33, overlap: 9}
      - {name: wide, width: 256, height: 96, window: 17, overlap: 5}
`

func TestShippedCatalog(t *testing.T) {
	c := jobspec.DefaultCatalog()
	if got, want := c.Names(), []string{"ref", "ref-cuda", "ref-talk", "ref-talk-cuda", "sim", "skyreels-v2-df-1.3b-540p", "skyreels-v2-df-14b-720p", "skyreels-v2-df-tiny"}; !slices.Equal(got, want) {
		t.Fatalf("models %v, want %v", got, want)
	}
	if got := c.CPUModels(); !slices.Equal(got, []string{"ref", "ref-talk", "sim"}) {
		t.Fatalf("CPU models %v", got)
	}
	if m := c.Models["ref-talk"]; !m.TalkingHead || m.AudioSampleRate != 16000 || m.Backend != "ref" || c.Models["ref"].TalkingHead {
		t.Fatalf("ref-talk: %+v", m)
	}
	if got := c.OfBackend("python"); !slices.Equal(got, []string{"skyreels-v2-df-1.3b-540p", "skyreels-v2-df-14b-720p", "skyreels-v2-df-tiny"}) {
		t.Fatalf("python models %v", got)
	}
	for _, c := range []struct {
		model, res       string
		w, h, win, ovl   int
		align, maxWindow int
		step             time.Duration
		steps            int
	}{
		{"skyreels-v2-df-1.3b-540p", "540p", 960, 544, 97, 17, 4, 97, 2 * time.Second, 30},
		{"skyreels-v2-df-14b-720p", "720p", 1280, 720, 121, 37, 4, 121, 20 * time.Second, 30},
		{"ref", "720p", 1280, 720, 121, 37, 1, 257, 0, 30},
		{"skyreels-v2-df-tiny", "tiny", 128, 64, 17, 5, 4, 33, 0, 4},
	} {
		m := jobspec.DefaultCatalog().Models[c.model]
		d := m.Default()
		if d.Name != c.res || d.Width != c.w || d.Height != c.h || d.Window != c.win || d.Overlap != c.ovl ||
			m.Align != c.align || m.MaxWindow != c.maxWindow || m.StepTime != c.step || m.FPS != 24 || m.Steps != c.steps {
			t.Errorf("%s: %+v", c.model, m)
		}
	}
	if m := c.Models["skyreels-v2-df-1.3b-540p"]; m.Shift != 8 || m.GPUMemoryMiB == 0 || m.Params["module"] != "skyreels_df" || m.AnySize {
		t.Errorf("%+v", m)
	}
	// DefaultCatalog hands out copies.
	c.Models["ref"].Params["x"] = "y"
	delete(c.Models, "sim")
	if d := jobspec.DefaultCatalog(); d.Models["ref"].Params["x"] != "" || d.Models["sim"].Name != "sim" {
		t.Fatal("DefaultCatalog shares its maps")
	}
}

// TestParseCatalogRejects: an unknown key, a missing field or numbers that
// do not fit together are each an error naming the model and the field.
func TestParseCatalogRejects(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"unknown key", "    fps: 16\n", "    fps: 16\n    colour: red\n", `"tiny-1.0": colour: line 12: unknown key`},
		{"missing field", "    steps: 8\n", "", `"tiny-1.0": steps: missing`},
		{"missing resolution field", "window: 17, overlap: 5}", "window: 17}", `resolutions[1]: overlap: missing`},
		{"unknown top key", "models:", "pools: {}\nmodels:", `unknown key "pools"`},
		{"wrong kind", "steps: 8", "steps: many", `"tiny-1.0": steps: line 8: "many" is not an integer`},
		{"bad name", "tiny-1.0:", "Tiny:", `model "Tiny": line 2: the name is not allowed`},
		{"no backend", "backend: python", "backend: ''", `backend: "" is not allowed`},
		{"window over max", "window: 33, overlap: 9", "window: 37, overlap: 9", `small: window 37 is not allowed; want 2..max_window 33`},
		{"unaligned window", "window: 17, overlap: 5", "window: 16, overlap: 5", `wide: window 16 and overlap 5 must be ≡ 1 (mod frame_align 4)`},
		{"unaligned overlap", "window: 17, overlap: 5", "window: 17, overlap: 6", `must be ≡ 1 (mod frame_align 4)`},
		{"overlap not below window", "window: 17, overlap: 5", "window: 17, overlap: 17", `wide: overlap 17 is not allowed; want 1..window-1 (16)`},
		{"unaligned max window", "max_window: 33", "max_window: 34", `max_window: 34 is not ≡ 1 (mod frame_align 4)`},
		{"max window over limit", "max_window: 33", "max_window: 301", `max_window: 301 is not allowed; want 2..257`},
		{"odd size", "width: 128, height: 96", "width: 127, height: 96", `small: 127x96 is not allowed`},
		{"too large", "width: 128, height: 96", "width: 2048, height: 96", `small: 2048x96 is not allowed`},
		{"duplicate size", "width: 256, height: 96", "width: 128, height: 96", `repeats the name or size of small`},
		{"no default", "default_resolution: small", "default_resolution: huge", `default_resolution: "huge" is not one of the model's resolutions (small, wide)`},
		{"fps", "fps: 16", "fps: 0", `fps: 0 is not allowed; want 1..60`},
		{"steps", "steps: 8", "steps: 0", `steps: 0 is not allowed`},
		{"guidance", "guidance: 5", "guidance: .nan", `guidance: NaN is not allowed`},
		{"shift", "shift: 3", "shift: -1", `shift: -1 is not allowed`},
		{"shift as param", "{module: tiny}", "{module: tiny, shift: '2'}", `params: shift is the model's field shift`},
		{"param value", "{module: tiny}", "{module: 'a;b'}", `params: module: value "a;b" is not allowed`},
		{"gpu memory", "gpu_memory_mib: 0", "gpu_memory_mib: -5", `gpu_memory_mib: -5 is not allowed`},
		{"audio rate", "audio_sample_rate: 0", "audio_sample_rate: 4000", `audio_sample_rate: 4000 is not allowed; want 0 (no audio) or 8000..192000 Hz`},
		{"talking head without audio", "talking_head: false", "talking_head: true", `talking_head: true is not allowed with audio_sample_rate 0`},
		{"step time", "step_time: 100ms", "step_time: soon", `step_time: "soon" is not allowed`},
		{"negative step time", "step_time: 100ms", "step_time: -1s", `step_time: "-1s" is not allowed`},
		{"no resolutions", "    resolutions:\n      - {name: small, width: 128, height: 96, window: 33, overlap: 9}\n      - {name: wide, width: 256, height: 96, window: 17, overlap: 5}\n", "    resolutions: []\n", `resolutions: empty`},
		{"empty description", "description: a test model", "description: '  '", `description: empty`},
		{"align", "frame_align: 4", "frame_align: 0", `frame_align: 0 is not allowed; want 1..64`},
		{"not yaml", "models:", "models: [", `invalid model catalog: yaml:`},
		{"duplicate key", "    fps: 16\n", "    fps: 16\n    fps: 16\n", `fps: line 12: given twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(tinyModel, c.from, c.to, 1)
			if doc == tinyModel {
				t.Fatalf("%q is not in the test catalog", c.from)
			}
			_, err := jobspec.ParseCatalog([]byte(doc))
			if !errors.Is(err, jobspec.ErrCatalog) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant an ErrCatalog containing %q", err, c.want)
			}
		})
	}
	for _, doc := range []string{"", "models: {}", "models:", "- a", "models: {x: 1}"} {
		if _, err := jobspec.ParseCatalog([]byte(doc)); !errors.Is(err, jobspec.ErrCatalog) {
			t.Errorf("%q: got %v, want ErrCatalog", doc, err)
		}
	}
}

// TestLoadCatalogOverride: SPOOL_CATALOG's file replaces the shipped
// catalog whole; its models' defaults are the job's.
func TestLoadCatalogOverride(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(tinyModel), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := jobspec.LoadCatalog(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); !slices.Equal(got, []string{"tiny-1.0"}) {
		t.Fatalf("models %v", got)
	}
	c, err = c.WithPools(jobspec.Pools{{Name: "edge", Models: []string{"tiny-1.0"}}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := jobspec.Validate(parse(t, `{"prompt":"a","durationS":4,"model":"tiny-1.0"}`), c)
	if err != nil {
		t.Fatal(err)
	}
	if j.Pool != "edge" || j.FPS != 16 || j.Width != 128 || j.Height != 96 || j.Window != 33 || j.Overlap != 9 || j.Steps != 8 ||
		j.Guidance != 5 || j.Align != 4 || j.TotalFrames != 64 || j.Resolution != "small" {
		t.Fatalf("%+v", j)
	}
	if _, err := jobspec.Validate(parse(t, `{"prompt":"a","durationS":4}`), c); err == nil || !strings.Contains(err.Error(), "tiny-1.0") {
		t.Fatalf("the default model, absent from the file: %v", err)
	}
	if _, err := c.WithPools(jobspec.Pools{{Name: "default", Models: []string{"ref"}}}); !errors.Is(err, jobspec.ErrCatalog) ||
		!strings.Contains(err.Error(), `pool default serves model "ref", which the catalog does not have (it has tiny-1.0)`) {
		t.Fatalf("a pool of a model the file lacks: %v", err)
	}
	if def, err := jobspec.LoadCatalog(""); err != nil || len(def.Models) != len(jobspec.DefaultCatalog().Models) {
		t.Fatalf("no path: %v", err)
	}
	if _, err := jobspec.LoadCatalog(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Fatal("a missing file loaded")
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte(strings.Replace(tinyModel, "fps: 16", "fps: 99", 1)), 0o600)
	if _, err := jobspec.LoadCatalog(bad); !errors.Is(err, jobspec.ErrCatalog) || !strings.Contains(err.Error(), bad+": catalog") {
		t.Fatalf("a bad file: %v", err)
	}
}

// FuzzParseCatalog: any document is rejected with ErrCatalog or gives
// models whose defaults make a valid job: the parser accepts no numbers
// that validation would then refuse.
func FuzzParseCatalog(f *testing.F) {
	f.Add([]byte(tinyModel))
	f.Add(jobspec.Shipped())
	f.Add([]byte(strings.Replace(tinyModel, "any_size: false", "any_size: true", 1)))
	f.Add([]byte("models: {a: &x {description: d}, b: *x}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := jobspec.ParseCatalog(data)
		if err != nil {
			if !errors.Is(err, jobspec.ErrCatalog) {
				t.Fatalf("error without ErrCatalog: %v", err)
			}
			return
		}
		if len(c.Models) == 0 {
			t.Fatal("an empty catalog accepted")
		}
		for name, m := range c.Models {
			media := ""
			if m.TalkingHead {
				media = `,"audio":"up-a","reference":"up-r"`
			}
			spec := parse(t, `{"prompt":"a","durationFrames":200,"model":"`+name+`"`+media+`}`)
			j, err := jobspec.Validate(spec, c)
			if err != nil {
				t.Fatalf("model %s's defaults are refused: %v", name, err)
			}
			d := m.Default()
			if j.Window != d.Window || j.Overlap != d.Overlap || j.Width != d.Width || j.Height != d.Height || j.FPS != m.FPS {
				t.Fatalf("model %s: job %+v, default %+v", name, j, d)
			}
		}
	})
}
