package jobspec_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/jobspec"
)

// uploads is a fake of the store's upload lookup.
type uploads map[string]jobspec.Upload

func (u uploads) Upload(_ context.Context, tenant, id string) (jobspec.Upload, error) {
	up, ok := u[id]
	if !ok || up.Tenant != tenant {
		return jobspec.Upload{}, jobspec.ErrNoUpload
	}
	return up, nil
}

// TestCheckInputs: a missing upload, another tenant's, one of the wrong
// kind and a video too short for the overlap are each refused naming the
// field; good inputs pass.
func TestCheckInputs(t *testing.T) {
	ups := uploads{
		"up-img":   {ID: "up-img", Tenant: "default", Kind: jobspec.KindImage},
		"up-vid":   {ID: "up-vid", Tenant: "default", Kind: jobspec.KindVideo, DurationS: 4},
		"up-short": {ID: "up-short", Tenant: "default", Kind: jobspec.KindVideo, DurationS: 0.1},
		"up-acme":  {ID: "up-acme", Tenant: "acme", Kind: jobspec.KindImage},
		"up-aud":   {ID: "up-aud", Tenant: "default", Kind: jobspec.KindAudio, DurationS: 3},
		"up-long":  {ID: "up-long", Tenant: "default", Kind: jobspec.KindAudio, DurationS: 36000},
		"up-tmpl":  {ID: "up-tmpl", Tenant: "default", Kind: jobspec.KindVideo, DurationS: 4},
		"up-film":  {ID: "up-film", Tenant: "default", Kind: jobspec.KindVideo, DurationS: 60},
	}
	cases := []struct{ spec, field, allowed string }{
		{`{"prompt":"a","durationS":2,"image":"up-img"}`, "", ""},
		{`{"prompt":"a","durationS":2,"video":"up-vid","includeInput":true}`, "", ""},
		{`{"prompt":"a","durationS":2,"image":"up-none"}`, "image", "a ready upload of tenant default (POST /uploads); there is none with this id"},
		{`{"prompt":"a","durationS":2,"image":"up-acme"}`, "image", "a ready upload of tenant default"},
		{`{"prompt":"a","durationS":2,"image":"up-vid"}`, "image", "up-vid is a video upload"},
		{`{"prompt":"a","durationS":2,"video":"up-img"}`, "video", "up-img is an image upload"},
		{`{"prompt":"a","durationS":2,"video":"up-short"}`, "video", "at least overlap_frames (37) frames at 24 fps"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-img"}`, "", ""},
		{`{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-tmpl","durationS":2}`, "", ""},
		{`{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-img","durationS":4}`, "duration_s", "at most the audio's length, 3.000 s (72 frames at 24 fps)"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-img","durationFrames":100}`, "duration_frames", "at most the audio's length"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-long","reference":"up-img"}`, "audio", "an audio track of at most 10800 s; it lasts 36000.0 s"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-img","reference":"up-img"}`, "audio", "up-img is an image upload"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-aud"}`, "reference", "an image or video upload; up-aud is an audio upload"},
		{`{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-film"}`, "reference", "a video of at most 10 s"},
	}
	for _, c := range cases {
		j, err := jobspec.Validate(parse(t, c.spec), jobspec.DefaultCatalog())
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		got, err := jobspec.CheckInputs(context.Background(), &j, ups)
		if c.field == "" {
			if err != nil || len(got) != len(j.Inputs()) || j.Plan == nil || j.TotalFrames < 1 {
				t.Errorf("%s: %v (plan %v, %d frames)", c.spec, err, j.Plan != nil, j.TotalFrames)
			}
			continue
		}
		var fe *jobspec.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Allowed, c.allowed) {
			t.Errorf("%s: got %v, want field %s allowing %q", c.spec, err, c.field, c.allowed)
		}
	}
	// A lookup that fails for another reason is not a field error.
	j, _ := jobspec.Validate(parse(t, `{"prompt":"a","durationS":2,"image":"up-img"}`), jobspec.DefaultCatalog())
	if _, err := jobspec.CheckInputs(context.Background(), &j, failing{}); err == nil || errors.Is(err, jobspec.ErrInvalid) {
		t.Errorf("store down: %v", err)
	}
}

type failing struct{}

func (failing) Upload(context.Context, string, string) (jobspec.Upload, error) {
	return jobspec.Upload{}, errors.New("connection refused")
}

// TestAudioLength: a job without a duration lasts as long as its audio:
// planned from the probe, then exactly from the decoded samples; one with
// a duration trims the audio and is refused longer than it.
func TestAudioLength(t *testing.T) {
	j, err := jobspec.Validate(parse(t, `{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-img","fps":25}`), jobspec.DefaultCatalog())
	if err != nil || !j.AudioLength || j.Plan != nil || j.AudioRate != 16000 {
		t.Fatalf("validate: %+v, %v", j, err)
	}
	if err := j.WithAudioSamples(16000*3 + 330); err != nil { // 3.020625 s: 75.5 frames, rounded up
		t.Fatal(err)
	}
	if j.TotalFrames != 76 || j.Plan == nil || j.AudioSamples != 48330 {
		t.Fatalf("after 48330 samples: %d frames, plan %v", j.TotalFrames, j.Plan != nil)
	}
	if err := j.WithAudioSamples(10); err != nil || j.TotalFrames != 1 {
		t.Fatalf("a 10-sample clip: %d frames, %v", j.TotalFrames, err)
	}
	if err := j.WithAudioSamples(0); err == nil {
		t.Fatal("an audio of no samples was taken")
	}
	// A cue past the audio's end is refused on its own field.
	c, err := jobspec.Validate(parse(t, `{"timeline":[{"fromS":0,"prompt":"a"},{"fromS":10,"prompt":"b"}],"model":"ref-talk","audio":"up-aud","reference":"up-img"}`),
		jobspec.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	var cue *jobspec.FieldError
	if err := c.WithAudioSamples(16000 * 3); !errors.As(err, &cue) || cue.Field != "timeline[1].from_s" || !strings.Contains(cue.Allowed, "as long as its audio: 3.000 s (72 frames)") {
		t.Fatalf("a cue at 10 s of 3 s of audio: %v", err)
	}
	k, err := jobspec.Validate(parse(t, `{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-img","durationFrames":48}`), jobspec.DefaultCatalog())
	if err != nil || k.AudioLength || k.TotalFrames != 48 {
		t.Fatalf("validate: %+v, %v", k, err)
	}
	if err := k.WithAudioSamples(32000); err != nil || k.TotalFrames != 48 { // exactly 2 s
		t.Fatalf("2 s of audio for 48 frames: %v", err)
	}
	var fe *jobspec.FieldError
	if err := k.WithAudioSamples(31000); !errors.As(err, &fe) || fe.Field != "duration_frames" {
		t.Fatalf("1.94 s of audio for 48 frames: %v", err)
	}
}

// TestAudioProbeSlack: a duration just past an audio upload's probed
// length is left to intake's exact count; one well past it is refused
// with the probed length.
func TestAudioProbeSlack(t *testing.T) {
	ups := uploads{"up-aud": {ID: "up-aud", Tenant: "default", Kind: jobspec.KindAudio, DurationS: 3.709},
		"up-img": {ID: "up-img", Tenant: "default", Kind: jobspec.KindImage}}
	for _, c := range []struct {
		frames int
		ok     bool
	}{{89, true}, {94, true}, {96, false}} {
		j, err := jobspec.Validate(parse(t, fmt.Sprintf(`{"prompt":"a","model":"ref-talk","audio":"up-aud","reference":"up-img","durationFrames":%d}`, c.frames)),
			jobspec.DefaultCatalog())
		if err != nil {
			t.Fatal(err)
		}
		_, err = jobspec.CheckInputs(context.Background(), &j, ups)
		if (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), "at most the audio's length, 3.709 s (89 frames at 24 fps)")) {
			t.Fatalf("%d frames of a 3.709 s audio: %v", c.frames, err)
		}
	}
}
