package jobspec_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/plan"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

func parse(t testing.TB, js string) *spoolv1.JobSpec {
	t.Helper()
	var s spoolv1.JobSpec
	if err := protojson.Unmarshal([]byte(js), &s); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return &s
}

func TestDefaults(t *testing.T) {
	j, err := jobspec.Validate(parse(t, `{"prompt":"a red fox","durationS":60}`), jobspec.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	want := jobspec.Job{Tenant: "default", Pool: "default", Model: "ref", Priority: 5, Mode: plan.Chain,
		TotalFrames: 1440, FPS: 24, Width: 1280, Height: 720, Resolution: "720p", Window: 121, Overlap: 37, Align: 1, Steps: 30, Guidance: 6, DurationField: "duration_s"}
	got := j
	got.Timeline, got.Plan = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if j.Plan.Count() != 17 || j.Timeline.At(0) != "a red fox" {
		t.Fatalf("plan of %d segments, prompt %q", j.Plan.Count(), j.Timeline.At(0))
	}
}

func TestPresetsAndTimeline(t *testing.T) {
	j, err := jobspec.Validate(parse(t, `{"timeline":[{"fromS":0,"prompt":"dawn"},{"fromS":20,"prompt":"noon"},{"fromS":40,"prompt":"dusk"}],
		"durationS":60,"resolution":"RESOLUTION_540P","model":"skyreels-v2-df-1.3b-540p","mode":"MODE_INDEPENDENT","fps":30,"priority":9,"tenant":"acme"}`), jobspec.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	if j.Width != 960 || j.Height != 544 || j.Resolution != "540p" || j.Window != 97 || j.Overlap != 17 || j.Align != 4 || j.TotalFrames != 1800 || j.Mode != plan.Independent {
		t.Fatalf("%+v", j)
	}
	if j.Timeline.At(599) != "dawn" || j.Timeline.At(600) != "noon" || j.Timeline.At(1200) != "dusk" {
		t.Fatalf("timeline %+v", j.Timeline)
	}
	live, err := jobspec.Validate(parse(t, `{"prompt":"waves","live":true}`), jobspec.DefaultCatalog())
	if err != nil || !live.Live || live.Plan.Count() != 0 {
		t.Fatalf("live: %+v %v", live, err)
	}
}

// routed is the shipped catalog fed to a CPU pool and a GPU pool per
// SkyReels-V2 model.
func routed(t testing.TB) jobspec.Catalog {
	t.Helper()
	pools, err := jobspec.ParsePools("default:ref,ref-talk,sim;gpu-l40s:skyreels-v2-df-1.3b-540p;gpu-h100:skyreels-v2-df-14b-720p;gpu-h200:skyreels-v2-df-14b-720p,ref")
	if err != nil {
		t.Fatal(err)
	}
	c, err := jobspec.DefaultCatalog().WithPools(pools)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRouting: a job goes to a pool that serves its model, and takes the
// model's defaults: the 540p model makes 960x544 in windows of 97 frames.
func TestRouting(t *testing.T) {
	cases := []struct {
		spec, pool, res string
		w, h, win, ovl  int
	}{
		{`{"prompt":"a","durationS":2}`, "default", "720p", 1280, 720, 121, 37},
		{`{"prompt":"a","durationS":2,"model":"sim","width":96,"height":64}`, "default", "", 96, 64, 97, 17},
		{`{"prompt":"a","durationS":2,"model":"skyreels-v2-df-1.3b-540p"}`, "gpu-l40s", "540p", 960, 544, 97, 17},
		{`{"prompt":"a","durationS":2,"model":"skyreels-v2-df-1.3b-540p","resolution":"RESOLUTION_540P"}`, "gpu-l40s", "540p", 960, 544, 97, 17},
		{`{"prompt":"a","durationS":2,"model":"skyreels-v2-df-1.3b-540p","width":544,"height":960}`, "gpu-l40s", "540p-portrait", 544, 960, 97, 17},
		{`{"prompt":"a","durationS":2,"model":"skyreels-v2-df-14b-720p"}`, "gpu-h100", "720p", 1280, 720, 121, 37},
		{`{"prompt":"a","durationS":2,"model":"skyreels-v2-df-14b-720p","pool":"gpu-h200"}`, "gpu-h200", "720p", 1280, 720, 121, 37},
		{`{"prompt":"a","durationS":2,"pool":"gpu-h200"}`, "gpu-h200", "720p", 1280, 720, 121, 37},
		{`{"prompt":"a","durationS":2,"resolution":"RESOLUTION_1080P"}`, "default", "1080p", 1920, 1080, 121, 37},
	}
	for _, c := range cases {
		j, err := jobspec.Validate(parse(t, c.spec), routed(t))
		if err != nil {
			t.Errorf("%s: %v", c.spec, err)
			continue
		}
		if j.Pool != c.pool || j.Resolution != c.res || j.Width != c.w || j.Height != c.h || j.Window != c.win || j.Overlap != c.ovl {
			t.Errorf("%s: got pool %s %s %dx%d window %d/%d", c.spec, j.Pool, j.Resolution, j.Width, j.Height, j.Window, j.Overlap)
		}
	}
	// A model no pool serves is refused, naming the models some pool serves.
	cpu, _ := jobspec.DefaultCatalog().WithPools(jobspec.Pools{jobspec.DefaultCatalog().CPUPool("default")})
	_, err := jobspec.Validate(parse(t, `{"id":"sky1","prompt":"x","durationS":2,"model":"skyreels-v2-df-1.3b-540p"}`), cpu)
	var fe *jobspec.FieldError
	if !errors.As(err, &fe) || fe.Field != "model" || !strings.Contains(err.Error(), `model: "skyreels-v2-df-1.3b-540p" is not allowed; allowed: a model that a pool serves: ref, ref-talk, sim (pools: default:ref,ref-talk,sim)`) {
		t.Fatalf("an unserved model: %v", err)
	}
}

// TestRejections: every bad spec names its field and what is allowed.
func TestRejections(t *testing.T) {
	long := strings.Repeat("x", jobspec.MaxPromptBytes+1)
	cases := []struct {
		spec, field, allowed string
	}{
		{`{"durationS":10}`, "prompt", "not blank"},
		{`{"prompt":"   ","durationS":10}`, "prompt", "not blank"},
		{`{"prompt":"` + long + `","durationS":10}`, "prompt", "4096 bytes"},
		{`{"prompt":"a"}`, "duration_s", "live"},
		{`{"prompt":"a","durationS":-1}`, "duration_s", "86400"},
		{`{"prompt":"a","durationS":90000}`, "duration_s", "86400"},
		{`{"prompt":"a","durationS":1,"durationFrames":24}`, "duration_frames", "one of them"},
		{`{"prompt":"a","durationS":1,"live":true}`, "live", "both 0"},
		{`{"prompt":"a","durationS":0.001}`, "duration_s", "one frame"},
		{`{"prompt":"a","durationS":1,"fps":61}`, "fps", "1..60"},
		{`{"prompt":"a","durationS":1,"width":1281,"height":720}`, "width", "even"},
		{`{"prompt":"a","durationS":1,"width":2560,"height":1440}`, "width", "1920"},
		{`{"prompt":"a","durationS":1,"width":720,"height":2000}`, "height", "1920"},
		{`{"prompt":"a","durationS":1,"width":32,"height":32}`, "width", "64"},
		{`{"prompt":"a","durationS":1,"width":640}`, "height", "together"},
		{`{"prompt":"a","durationS":1,"resolution":7}`, "resolution", "720p"},
		{`{"prompt":"a","durationS":1,"windowFrames":1}`, "window_frames", "2..257"},
		{`{"prompt":"a","durationS":1,"model":"skyreels-v2-df-1.3b-540p","windowFrames":121}`, "window_frames", "(skyreels-v2-df-1.3b-540p: 97); 0 means the model default (97 here)"},
		{`{"prompt":"a","durationS":1,"model":"skyreels-v2-df-1.3b-540p","resolution":"RESOLUTION_720P"}`, "resolution", "a resolution of model skyreels-v2-df-1.3b-540p: 540p (960x544), 540p-portrait (544x960)"},
		{`{"prompt":"a","durationS":1,"model":"skyreels-v2-df-1.3b-540p","width":1280,"height":720}`, "width", "a resolution of model skyreels-v2-df-1.3b-540p: 540p (960x544)"},
		{`{"prompt":"a","durationS":1,"model":"skyreels-v2-df-14b-720p","pool":"default"}`, "pool", "a pool that serves model skyreels-v2-df-14b-720p (pool default serves ref, ref-talk, sim; it is served by gpu-h100, gpu-h200)"},
		{`{"prompt":"a","durationS":1,"model":"ref-cuda"}`, "model", "a model that a pool serves: ref, ref-talk, sim, skyreels-v2-df-1.3b-540p, skyreels-v2-df-14b-720p"},
		{`{"prompt":"a","durationS":1,"windowFrames":300}`, "window_frames", "2..257"},
		{`{"prompt":"a","durationS":1,"windowFrames":33,"overlapFrames":33}`, "overlap_frames", "below window_frames"},
		{`{"prompt":"a","durationS":1,"model":"skyreels-v2-df-1.3b-540p","windowFrames":9,"overlapFrames":6}`, "overlap_frames", "4k+1"},
		{`{"prompt":"a","durationS":1,"mode":"MODE_CHAIN","windowFrames":9,"overlapFrames":0,"model":"nope"}`, "model", "a model of the catalog: ref, ref-cuda, ref-talk, ref-talk-cuda, sim"},
		{`{"prompt":"a","durationS":1,"steps":500}`, "steps", "1..200"},
		{`{"prompt":"a","durationS":1,"guidance":-1}`, "guidance", "0..50"},
		{`{"prompt":"a","durationS":1,"pool":"H100"}`, "pool", "a-z"},
		{`{"prompt":"a","durationS":1,"pool":"a100"}`, "pool", "one of: default, gpu-l40s, gpu-h100, gpu-h200"},
		{`{"prompt":"a","durationS":1,"tenant":"-x"}`, "tenant", "starting with"},
		{`{"prompt":"a","durationS":1,"priority":10}`, "priority", "1..9"},
		{`{"prompt":"a","durationS":1,"priority":-1}`, "priority", "1..9"},
		{`{"prompt":"a","durationS":1,"id":"../etc"}`, "id", "a-z"},
		{`{"prompt":"x","timeline":[{"fromS":0,"prompt":"a"}],"durationS":10}`, "prompt", "empty when a timeline is given"},
		{`{"timeline":[{"fromS":1,"prompt":"a"}],"durationS":10}`, "timeline[0].from_s", "first cue"},
		{`{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":0,"prompt":"b"}],"durationS":10}`, "timeline[1].from_s", "strictly increasing"},
		{`{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":11,"prompt":"b"}],"durationS":10}`, "timeline[1].from_s", "before the end"},
		{`{"timeline":[{"fromS":0,"prompt":""}],"durationS":10}`, "timeline[0].prompt", "not blank"},
		// 720p windows of 121 frames overlapping by 37 at 24 fps: boundaries
		// at 0, 5.04 s, then every 3.5 s; a cue lands within 1.75 s.
		{`{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":2.5,"prompt":"b"}],"durationS":10}`, "timeline[1].from_s", "within 1.75 s of a segment boundary"},
		{`{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":1,"prompt":"b"}],"durationS":10}`, "timeline[1].from_s", "0 s, 5.04 s, then every 3.5 s"},
		{`{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":20,"prompt":"b"},{"fromS":20.5,"prompt":"c"}],"durationS":30}`, "timeline[2].from_s", "of its own"},
		{`{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":10.9,"prompt":"b"}],"durationS":11}`, "timeline[1].from_s", "before the end"},
		{`{"mode":5,"prompt":"a","durationS":1}`, "mode", "MODE_CHAIN"},
		{`{"prompt":"a","live":true,"mode":"MODE_INDEPENDENT"}`, "live", "chain mode"},
		{`{"prompt":"a","durationS":1,"image":"../other/final.mp4"}`, "image", "the id of an upload"},
		{`{"prompt":"a","durationS":1,"video":"up-X"}`, "video", "the id of an upload"},
		{`{"prompt":"a","durationS":1,"video":"up-a","image":"up-b"}`, "video", "not both"},
		{`{"prompt":"a","durationS":1,"video":"up-a","mode":"MODE_INDEPENDENT"}`, "video", "chain mode only"},
		{`{"prompt":"a","live":true,"video":"up-a"}`, "video", "live"},
		{`{"prompt":"a","durationS":1,"includeInput":true}`, "include_input", "unless video"},
		{`{"prompt":"a","durationS":1,"includeInput":true,"image":"up-a"}`, "include_input", "unless video"},
		{`{"prompt":"a","durationS":1,"fit":"FIT_PAD"}`, "fit", "unless image, video or reference"},
		{`{"prompt":"a","durationS":1,"fit":9,"image":"up-a"}`, "fit", "FIT_CROP, FIT_PAD or FIT_SCALE"},
		{`{"prompt":"a","durationS":1,"audio":"up-a"}`, "audio", "takes no audio"},
		{`{"prompt":"a","durationS":1,"model":"ref-talk","reference":"up-r"}`, "audio", "is a talking head, which speaks it"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-a"}`, "reference", "is a talking head, which animates it"},
		{`{"prompt":"a","durationS":1,"reference":"up-r"}`, "reference", "not a talking head (talking-head models: ref-talk, ref-talk-cuda)"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-a","reference":"up-r","image":"up-i"}`, "image", "its reference is the avatar"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-a","reference":"up-r","live":true}`, "audio", "empty for a live job"},
		{`{"prompt":"a"}`, "duration_s", "or neither with audio"},
		{`{"prompt":"a","model":"ref-talk","reference":"up-r"}`, "audio", "lasts as long as the audio"},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			_, err := jobspec.Validate(parse(t, c.spec), routed(t))
			var fe *jobspec.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, jobspec.ErrInvalid) {
				t.Fatalf("%s: got %v, want a FieldError", c.spec[:min(len(c.spec), 80)], err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Allowed, c.allowed) || fe.Code != jobspec.CodeInvalidArgument || fe.Value == "" {
				t.Fatalf("%s: got %+v (%v), want field %s allowing %q", c.spec[:min(len(c.spec), 80)], fe, err, c.field, c.allowed)
			}
		})
	}
	if _, err := jobspec.Validate(nil, jobspec.DefaultCatalog()); !errors.Is(err, jobspec.ErrInvalid) {
		t.Fatal("nil spec accepted")
	}
	nan := &spoolv1.JobSpec{Prompt: "a", DurationS: math.NaN()}
	if _, err := jobspec.Validate(nan, jobspec.DefaultCatalog()); !errors.Is(err, jobspec.ErrInvalid) {
		t.Fatal("NaN duration accepted")
	}
}

// TestREADMEDocumentsLimits keeps the README's table of limits in step with
// the code.
func TestREADMEDocumentsLimits(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range jobspec.Limits() {
		row := "| `" + l.Field + "` | " + l.Allowed + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md lacks the row\n%s", row)
		}
	}
}

// FuzzValidate: any JSON spec is either rejected with a FieldError or yields
// a job whose plan tiles its frames.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{"prompt":"a","durationS":60}`, `{"prompt":"a","live":true}`,
		`{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":2,"prompt":"b"}],"durationS":3,"windowFrames":9,"overlapFrames":4}`,
		`{"prompt":"a","durationFrames":5,"model":"skyreels-v2-df-14b-720p","windowFrames":6,"overlapFrames":1,"mode":"MODE_INDEPENDENT"}`,
		`{"prompt":"a","durationS":2,"video":"up-a","includeInput":true,"fit":"FIT_PAD"}`, `{"prompt":"a","durationS":2,"image":"up-b","mode":"MODE_INDEPENDENT"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s spoolv1.JobSpec
		if protojson.Unmarshal(data, &s) != nil {
			return
		}
		j, err := jobspec.Validate(&s, jobspec.DefaultCatalog())
		if err != nil {
			var fe *jobspec.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Allowed == "" {
				t.Fatalf("unhelpful error %v", err)
			}
			return
		}
		if j.Live || j.Plan.Count() > 2000 {
			return
		}
		segs, err := j.Plan.All()
		if err != nil {
			t.Fatal(err)
		}
		if last := segs[len(segs)-1]; last.NewEnd() != j.TotalFrames {
			t.Fatalf("plan ends at %d, want %d", last.NewEnd(), j.TotalFrames)
		}
		// An extension re-planned after intake starts where its input ends
		// (include_input) or at 0, its first segment conditioned on the
		// input's last overlap frames.
		if j.Video == "" {
			return
		}
		n := int64(j.Overlap) + int64(len(data))
		if err := j.WithInputFrames(n); err != nil {
			t.Fatal(err)
		}
		segs, err = j.Plan.All()
		if err != nil {
			t.Fatal(err)
		}
		start := int64(0)
		if j.IncludeInput {
			start = n
		}
		if segs[0].FirstFrame != start-int64(j.Overlap) || segs[0].NewStart() != start || segs[len(segs)-1].NewEnd() != start+j.TotalFrames {
			t.Fatalf("extension of %d frames planned %+v … %+v", n, segs[0], segs[len(segs)-1])
		}
	})
}

// TestIndependentPlansCrossfade: every independent job Validate accepts
// has segments that hold both their crossfades: a segment's overlap with
// the one before and the next one's overlap fit in the frames it keeps
// (the stitcher's condition); one that cannot is refused on
// overlap_frames.
func TestIndependentPlansCrossfade(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	for i := 0; i < 4000; i++ {
		w, o, n := 2+rng.IntN(60), rng.IntN(60), 1+rng.IntN(400)
		model := []string{"ref", "skyreels-v2-df-1.3b-540p"}[rng.IntN(2)]
		spec := fmt.Sprintf(`{"prompt":"a","mode":"MODE_INDEPENDENT","model":%q,"durationFrames":%d,"windowFrames":%d,"overlapFrames":%d}`, model, n, w, o)
		j, err := jobspec.Validate(parse(t, spec), jobspec.DefaultCatalog())
		var fe *jobspec.FieldError
		if errors.As(err, &fe) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		segs, err := j.Plan.All()
		if err != nil {
			t.Fatal(err)
		}
		for k, s := range segs {
			trail := 0
			if k+1 < len(segs) {
				trail = segs[k+1].Overlap
			}
			if s.Overlap+trail > s.Frames-s.Trim {
				t.Fatalf("%s: segment %d keeps %d frames, fewer than its overlaps of %d and %d", spec, k, s.Frames-s.Trim, s.Overlap, trail)
			}
		}
	}
	_, err := jobspec.Validate(parse(t, `{"prompt":"a","mode":"MODE_INDEPENDENT","durationFrames":87,"windowFrames":20,"overlapFrames":12}`), jobspec.DefaultCatalog())
	var fe *jobspec.FieldError
	if !errors.As(err, &fe) || fe.Field != "overlap_frames" || !strings.Contains(fe.Allowed, "at most half of window_frames (20") {
		t.Fatalf("window 20, overlap 12: %v", err)
	}
}
