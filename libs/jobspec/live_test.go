package jobspec_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/jobspec"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestLiveAhead: live_ahead_s is how far a live job may run ahead of its
// live edge: 0 means the default, 1..3600 is allowed, and a bounded job
// must leave it 0. Each refusal names the field and what is allowed.
func TestLiveAhead(t *testing.T) {
	cases := []struct {
		name    string
		spec    *spoolv1.JobSpec
		want    float64 // the normalised value when accepted
		allowed string  // in the FieldError when refused
	}{
		{"live default", &spoolv1.JobSpec{Prompt: "a", Live: true}, jobspec.DefaultLiveAheadS, ""},
		{"live, given", &spoolv1.JobSpec{Prompt: "a", Live: true, LiveAheadS: 2.5}, 2.5, ""},
		{"live, lowest", &spoolv1.JobSpec{Prompt: "a", Live: true, LiveAheadS: 1}, 1, ""},
		{"live, highest", &spoolv1.JobSpec{Prompt: "a", Live: true, LiveAheadS: 3600}, 3600, ""},
		{"bounded", &spoolv1.JobSpec{Prompt: "a", DurationS: 1}, 0, ""},
		{"live, too small", &spoolv1.JobSpec{Prompt: "a", Live: true, LiveAheadS: 0.5}, 0, "1..3600"},
		{"live, too large", &spoolv1.JobSpec{Prompt: "a", Live: true, LiveAheadS: 3601}, 0, "1..3600"},
		{"live, negative", &spoolv1.JobSpec{Prompt: "a", Live: true, LiveAheadS: -1}, 0, "1..3600"},
		{"live, NaN", &spoolv1.JobSpec{Prompt: "a", Live: true, LiveAheadS: math.NaN()}, 0, "1..3600"},
		{"live, infinite", &spoolv1.JobSpec{Prompt: "a", Live: true, LiveAheadS: math.Inf(1)}, 0, "1..3600"},
		{"bounded, set", &spoolv1.JobSpec{Prompt: "a", DurationS: 1, LiveAheadS: 10}, 0, "0 for a bounded job"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j, err := jobspec.Validate(c.spec, jobspec.DefaultCatalog())
			if c.allowed == "" {
				if err != nil || j.LiveAheadS != c.want {
					t.Fatalf("live_ahead_s %v, %v; want %v", j.LiveAheadS, err, c.want)
				}
				return
			}
			var fe *jobspec.FieldError
			if !errors.As(err, &fe) || fe.Field != "live_ahead_s" || !strings.Contains(fe.Allowed, c.allowed) || fe.Code != jobspec.CodeInvalidArgument {
				t.Fatalf("got %v, want a FieldError on live_ahead_s allowing %q", err, c.allowed)
			}
		})
	}
}
