package bus_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

func demoSpec() *spoolv1.JobSpec {
	return &spoolv1.JobSpec{
		Timeline:   []*spoolv1.PromptCue{{FromS: 0, Prompt: "dawn"}, {FromS: 20, Prompt: "noon"}},
		DurationS:  60,
		Fps:        24,
		Resolution: spoolv1.Resolution_RESOLUTION_720P,
		Mode:       spoolv1.Mode_MODE_CHAIN,
		Seed:       1 << 60,
		Guidance:   6.5,
	}
}

func TestJSONAndProtobufDecodeEqual(t *testing.T) {
	want := demoSpec()
	pb, _ := proto.Marshal(want)
	js := `{"timeline":[{"fromS":0,"prompt":"dawn"},{"from_s":20,"prompt":"noon"}],"durationS":60,"fps":24,
		"resolution":"RESOLUTION_720P","mode":"MODE_CHAIN","seed":"1152921504606846976","guidance":6.5}`
	ct := func(v string) nats.Header { return nats.Header{"Content-Type": {v}} }
	cases := []struct {
		name   string
		body   []byte
		header nats.Header
	}{
		{"protobuf, no header", pb, nil},
		{"protobuf, header", pb, ct("application/protobuf")},
		{"protobuf, x-protobuf", pb, ct("application/x-protobuf")},
		{"JSON sniffed", []byte(js), nil},
		{"JSON sniffed after white space", []byte(" \n\t" + js), nats.Header{"Nats-Msg-Id": {"x"}}},
		{"JSON header", []byte(js), ct("application/json")},
		{"JSON header with charset", []byte(js), ct("Application/JSON; charset=utf-8")},
		{"JSON lowercase header name", []byte(js), nats.Header{"content-type": {"application/json"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := bus.DecodeJobSpec(c.body, c.header)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("decoded %v\nwant    %v", got, want)
			}
		})
	}
}

func TestMalformedJobsNameTheProblem(t *testing.T) {
	cases := []struct{ body, want string }{
		{``, "empty job spec"},
		{"\n\t ", "empty job spec"},
		{`   `, "empty job spec"},
		{`{"fps":"abc"}`, `invalid value for uint32 field fps: "abc"`},
		{`{"durationS":"long"}`, "durationS"},
		{`{"promt":"typo"}`, `unknown field "promt"`},
		{`{"timeline":[{"fromS":[1]}]}`, "fromS"},
		{`{"prompt":"a",}`, "JSON"},
		{`{"mode":"SIDEWAYS"}`, "mode"},
		{`{"resolution":"RESOLUTION_480P"}`, "allowed: RESOLUTION_540P, RESOLUTION_720P, RESOLUTION_1080P"},
		{`{"mode":"SIDEWAYS"}`, "allowed: MODE_CHAIN"},
		{`{"promt":"typo"}`, "JobSpec fields: id, prompt, timeline,"},
		{`{"timeline":[{"text":"x"}]}`, "timeline entries: fromS, prompt"},
		{"\x0a\xff\xff\xff\xff\xff", "protobuf"},
	}
	for _, c := range cases {
		_, err := bus.DecodeJobSpec([]byte(c.body), nil)
		if !errors.Is(err, bus.ErrMalformedJob) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want ErrMalformedJob naming %q", c.body, err, c.want)
		}
	}
	typed := []struct{ body, contentType, want string }{
		{`{"fps":24}`, "text/plain", `unsupported content type "text/plain"`},
		{`{"fps":24}`, "application/protobuf", "protobuf"},
		{"\x08\x01", "application/json", "JSON"},
		{`{"fps":24}`, "application/json; =", "content type"},
	}
	for _, c := range typed {
		_, err := bus.DecodeJobSpec([]byte(c.body), nats.Header{"Content-Type": {c.contentType}})
		if !errors.Is(err, bus.ErrMalformedJob) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q as %s: got %v, want ErrMalformedJob naming %q", c.body, c.contentType, err, c.want)
		}
	}
	big := make([]byte, bus.MaxJobSpecBytes+1)
	big[0] = '{'
	if _, err := bus.DecodeJobSpec(big, nil); !errors.Is(err, bus.ErrMalformedJob) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized spec: %v", err)
	}
}

func TestJobIDFromSubmission(t *testing.T) {
	if got := bus.JobIDFromSubmission(&spoolv1.JobSpec{Id: "mine"}, "hdr", 7); got != "mine" {
		t.Fatal(got)
	}
	if got := bus.JobIDFromSubmission(&spoolv1.JobSpec{}, "hdr", 7); got != "hdr" {
		t.Fatal(got)
	}
	if got := bus.JobIDFromSubmission(&spoolv1.JobSpec{}, "", 7); got != "j7" {
		t.Fatal(got)
	}
}

func TestSubjects(t *testing.T) {
	good := map[string]func() (string, error){
		"spool.segments.h100":       func() (string, error) { return bus.SegmentsSubject("h100") },
		"spool.results.j-1":         func() (string, error) { return bus.ResultsSubject("j-1") },
		"spool.events.j_2":          func() (string, error) { return bus.EventsSubject("j_2") },
		"spool.control.cancel.abc9": func() (string, error) { return bus.CancelSubject("abc9") },
		"spool.control.void.abc9":   func() (string, error) { return bus.VoidSubject("abc9") },
		"pool-default":              func() (string, error) { return bus.PoolConsumer("default") },
	}
	for want, f := range good {
		if got, err := f(); err != nil || got != want {
			t.Errorf("got %q %v, want %q", got, err, want)
		}
	}
	builders := map[string]func(string) (string, error){
		"segments": bus.SegmentsSubject, "results": bus.ResultsSubject, "events": bus.EventsSubject,
		"cancel": bus.CancelSubject, "void": bus.VoidSubject, "pool consumer": bus.PoolConsumer,
	}
	for _, bad := range []string{"", "a.b", "*", ">", "a.>", "A100", "a b", "a\tb", "-x", "_x", "$sys", "é", strings.Repeat("a", 65)} {
		for name, build := range builders {
			if got, err := build(bad); !errors.Is(err, bus.ErrInvalidToken) {
				t.Errorf("%s of %q accepted: %q %v", name, bad, got, err)
			}
		}
	}
	if got := bus.TaskMsgID("j", 3, 2); got != "j.3.2.task" {
		t.Error(got)
	}
	if got := bus.ResultMsgID("j", 3, 2, "PHASE_DONE"); got != "j.3.2.PHASE_DONE" {
		t.Error(got)
	}
}

// FuzzDecodeJobSpec: no body panics, and any accepted JSON body round-trips.
func FuzzDecodeJobSpec(f *testing.F) {
	pb, _ := proto.Marshal(demoSpec())
	for _, s := range [][]byte{pb, pb[:len(pb)/2], []byte(`{"prompt":"a","durationS":60}`), []byte(`{"fps":"x"}`),
		[]byte(`{"timeline":[{"fromS":[1]}]}`), []byte("garbage"), []byte(`{"a":{"b":{"c":[[[{}]]]}}}`), {}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := bus.DecodeJobSpec(data, nil)
		if err != nil {
			if !errors.Is(err, bus.ErrMalformedJob) {
				t.Fatalf("error without ErrMalformedJob: %v", err)
			}
			if f := bus.MalformedField(err); f == "" {
				t.Fatalf("no field for %v", err)
			}
			return
		}
		js, err := protojson.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		// protojson drops unknown binary fields, so compare what JSON holds.
		again, err := bus.DecodeJobSpec(js, nil)
		if err != nil {
			t.Fatalf("round trip of %s: %v", js, err)
		}
		if js2, _ := protojson.Marshal(again); string(js2) != string(js) {
			t.Fatalf("round trip:\n%s\n%s", js, js2)
		}
	})
}

// A malformed spec's error names the field it is about, by its proto name,
// for the API's "field" and a rejected job's error_field.
func TestMalformedFieldNamesTheField(t *testing.T) {
	for body, want := range map[string]string{
		`{"fps":"abc"}`:                        "fps",
		`{"durationS":"long"}`:                 "duration_s",
		`{"resolution":"RESOLUTION_480P"}`:     "resolution",
		`{"mode":"SIDEWAYS"}`:                  "mode",
		`{"timeline":[{"fromS":[1]}]}`:         "from_s",
		`{"promt":"typo"}`:                     "spec",
		`{"prompt":"a",}`:                      "spec",
		"\x0a\xff\xff\xff\xff\xff":             "spec",
		`{"windowFrames":1e99}`:                "window_frames",
		`{"prompt":"a","seed":"not a number"}`: "seed",
	} {
		_, err := bus.DecodeJobSpec([]byte(body), nil)
		if err == nil {
			t.Fatalf("%q decoded", body)
		}
		if got := bus.MalformedField(err); got != want {
			t.Errorf("%q (%v): field %q, want %q", body, err, got, want)
		}
	}
}
