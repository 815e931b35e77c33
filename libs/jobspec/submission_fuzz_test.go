package jobspec_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/jobspec"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// submissionSpecs are real job specs, as the README, the demo and the tests
// submit them: the fuzzer's seeds, as JSON and as protobuf.
var submissionSpecs = []string{
	`{"timeline": [{"fromS": 0, "prompt": "a lighthouse on a cliff at dusk, waves below"},
	  {"fromS": 20, "prompt": "the lighthouse beam sweeping over a stormy sea at night"},
	  {"fromS": 40, "prompt": "dawn over a calm sea, the lighthouse in soft light"}],
	 "durationS": 60, "resolution": "RESOLUTION_720P", "fps": 24, "mode": "MODE_CHAIN", "seed": 2026}`,
	`{"id": "lighthouse", "prompt": "a lighthouse at dusk", "durationS": 60, "resolution": "RESOLUTION_720P"}`,
	`{"prompt": "a red fox in the snow", "durationS": 2, "width": 256, "height": 128, "fps": 24, "includeInput": true, "fit": "FIT_PAD", "video": "up-a1"}`,
	`{"prompt": "a red fox in the snow", "durationS": 2, "width": 256, "height": 128, "image": "up-b2", "mode": "MODE_INDEPENDENT"}`,
	`{"model": "ref-talk", "prompt": "a presenter", "width": 320, "height": 180, "steps": 8, "audio": "up-c3", "reference": "up-d4"}`,
	`{"prompt":"a fox in snow","durationS":2}`,
	`{"prompt":"a","live":true,"liveAheadS":10,"pool":"default"}`,
	`{"id":"api-job","prompt":"a lighthouse at dusk","durationFrames":30,"windowFrames":13,"overlapFrames":4,"width":96,"height":64,"steps":3,"fps":24,"tenant":"acme"}`,
	`{"prompt":"a","durationFrames":5,"model":"sim","mode":"MODE_INDEPENDENT","windowFrames":6,"overlapFrames":1}`,
}

// Content types a submission arrives with: none (sniffed), JSON, protobuf
// and one no decoder takes.
var submissionTypes = []string{"", bus.ContentJSON, bus.ContentProtobuf, "text/plain; charset=utf-8"}

// FuzzSubmission: a submission from NATS, decoded as the dispatcher and the
// gateway decode it (bus.DecodeJobSpec, by its Content-Type) and validated
// against the catalog and pools the dispatcher runs with (jobspec.Validate),
// never panics; is refused with a malformed-job error naming a field, or a
// FieldError naming the field and what it allows; yields a job id that is
// a valid name; and, when accepted, validates to the same job whichever
// encoding carries it (the protobuf the gateway stores and publishes, or
// protojson), without Validate changing the spec; its protojson is what
// the jobs.spec column (jsonb) holds: UTF-8 without a \u0000. A
// FieldError's texts, which a rejected job keeps, are UTF-8 without a NUL.
func FuzzSubmission(f *testing.F) {
	for _, js := range submissionSpecs {
		var s spoolv1.JobSpec
		if err := protojson.Unmarshal([]byte(js), &s); err != nil {
			f.Fatalf("seed %s: %v", js, err)
		}
		pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(&s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(js), uint8(0), "")
		f.Add([]byte(js), uint8(1), "nats-msg-id")
		f.Add(pb, uint8(2), "")
		f.Add(pb, uint8(0), "Bad.ID")
	}
	cat, err := jobspec.LoadRouted("", "default:ref,ref-talk,sim;h100:skyreels-v2-df-1.3b-540p", "SPOOL_DISPATCHER_POOLS")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, ct uint8, msgID string) {
		h := nats.Header{}
		if c := submissionTypes[int(ct)%len(submissionTypes)]; c != "" {
			h.Set(bus.HeaderContentType, c)
		}
		spec, err := bus.DecodeJobSpec(data, h)
		if err != nil {
			if !errors.Is(err, bus.ErrMalformedJob) || bus.MalformedField(err) == "" {
				t.Fatalf("decode error without ErrMalformedJob and a field: %v", err)
			}
			storable(t, bus.MalformedField(err)) // its message may quote the bytes sent: the dispatcher cleans it
		}
		// The job's id, as the dispatcher names it (onSubmission).
		id := bus.JobIDFromSubmission(spec, msgID, 7)
		if !ident.Valid(id) {
			id = bus.JobIDFromSubmission(&spoolv1.JobSpec{}, "", 7)
		}
		if !ident.Valid(id) {
			t.Fatalf("job id %q", id)
		}
		if err != nil {
			return
		}
		if _, err := protojson.Marshal(spec); err != nil { // a rejection records the spec so
			t.Fatalf("a decoded spec does not encode as JSON: %v", err)
		}
		before := proto.Clone(spec)
		job, err := jobspec.Validate(spec, cat)
		if !proto.Equal(before, spec) {
			t.Fatalf("Validate changed the spec:\n%v\n%v", before, spec)
		}
		if err != nil {
			var fe *jobspec.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Allowed == "" {
				t.Fatalf("refused without a field and what it allows: %v", err)
			}
			storable(t, fe.Error(), fe.Field, fe.Code)
			return
		}
		// The gateway records and publishes the spec as deterministic
		// protobuf; a client may send protojson.
		pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		js, err := protojson.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(js) || bytes.Contains(js, []byte(`\u0000`)) { // the jobs.spec column is jsonb
			t.Fatalf("an accepted spec's JSON Postgres cannot hold: %s", js)
		}
		for _, again := range []struct {
			data []byte
			ct   string
		}{{pb, bus.ContentProtobuf}, {js, bus.ContentJSON}, {js, ""}} {
			h := nats.Header{}
			if again.ct != "" {
				h.Set(bus.HeaderContentType, again.ct)
			}
			spec2, err := bus.DecodeJobSpec(again.data, h)
			if err != nil {
				t.Fatalf("an accepted spec sent again as %q does not decode: %v", again.ct, err)
			}
			if again.ct == bus.ContentProtobuf && !proto.Equal(spec, spec2) {
				t.Fatalf("protobuf round trip:\n%v\n%v", spec, spec2)
			}
			job2, err := jobspec.Validate(spec2, cat)
			if err != nil {
				t.Fatalf("an accepted spec sent again as %q is refused: %v", again.ct, err)
			}
			if a, b := comparable(job), comparable(job2); !reflect.DeepEqual(a, b) {
				t.Fatalf("the same spec as %q validates otherwise:\n%+v\n%+v", again.ct, a, b)
			}
		}
	})
}

// storable fails t unless every text of a refusal can be stored as it is
// in Postgres (a rejected job's error_message and error_field) and sent in
// JSON: valid UTF-8 without a NUL.
func storable(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("a refusal's text Postgres cannot hold: %q", s)
		}
	}
}

// comparable is job without its plan, which is compared by its segments'
// count and first and last segments.
func comparable(j jobspec.Job) any {
	type planned struct {
		Count       int64
		First, Last any
	}
	var p planned
	if j.Plan != nil {
		p.Count = j.Plan.Count()
		if p.Count > 0 {
			p.First, _ = j.Plan.Segment(0)
			if !j.Live {
				p.Last, _ = j.Plan.Segment(p.Count - 1)
			}
		}
	}
	j.Plan = nil
	return struct {
		Job  jobspec.Job
		Plan planned
	}{j, p}
}

// TestSubmissionSeedsValidate: FuzzSubmission's seeds are specs the
// dispatcher accepts, so that its round trips start from real jobs.
func TestSubmissionSeedsValidate(t *testing.T) {
	cat, err := jobspec.LoadRouted("", "default:ref,ref-talk,sim;h100:skyreels-v2-df-1.3b-540p", "SPOOL_DISPATCHER_POOLS")
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range submissionSpecs {
		if _, err := jobspec.Validate(parse(t, js), cat); err != nil {
			t.Errorf("%s: %v", js, err)
		}
	}
}
