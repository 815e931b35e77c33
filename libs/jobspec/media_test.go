package jobspec_test

import (
	"context"
	"errors"
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
	}
	cases := []struct{ spec, field, allowed string }{
		{`{"prompt":"a","durationS":2,"image":"up-img"}`, "", ""},
		{`{"prompt":"a","durationS":2,"video":"up-vid","includeInput":true}`, "", ""},
		{`{"prompt":"a","durationS":2,"image":"up-none"}`, "image", "a ready upload of tenant default (POST /uploads); there is none with this id"},
		{`{"prompt":"a","durationS":2,"image":"up-acme"}`, "image", "a ready upload of tenant default"},
		{`{"prompt":"a","durationS":2,"image":"up-vid"}`, "image", "up-vid is a video upload"},
		{`{"prompt":"a","durationS":2,"video":"up-img"}`, "video", "up-img is an image upload"},
		{`{"prompt":"a","durationS":2,"video":"up-short"}`, "video", "at least overlap_frames (37) frames at 24 fps"},
	}
	for _, c := range cases {
		j, err := jobspec.Validate(parse(t, c.spec), jobspec.DefaultCatalog())
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		got, err := jobspec.CheckInputs(context.Background(), j, ups)
		if c.field == "" {
			if err != nil || len(got) != len(j.Inputs()) {
				t.Errorf("%s: %v", c.spec, err)
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
	if _, err := jobspec.CheckInputs(context.Background(), j, failing{}); err == nil || errors.Is(err, jobspec.ErrInvalid) {
		t.Errorf("store down: %v", err)
	}
}

type failing struct{}

func (failing) Upload(context.Context, string, string) (jobspec.Upload, error) {
	return jobspec.Upload{}, errors.New("connection refused")
}
