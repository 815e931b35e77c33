package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/gateway/gateway"
)

// audioJob records a queued talking-head job of tenant, 48 frames at 24
// fps (2 s of video), whose audio's envelope is peaks (none: intake has not
// written it); it returns the job's id and its audio upload's.
func audioJob(t *testing.T, c devstacktest.Clients, tenant string, peaks []byte) (id, audio string) {
	t.Helper()
	ctx := context.Background()
	id = fmt.Sprintf("talk-%d", time.Now().UnixNano())
	audio, ref := blob.NewUploadID(), blob.NewUploadID()
	j := store.Job{ID: id, Tenant: tenant, Priority: 5, Pool: "default", Model: "ref-talk", Mode: "chain", State: store.JobQueued,
		Spec: fmt.Appendf(nil, `{"prompt":"a reading","model":"ref-talk","audio":%q,"reference":%q,"fit":"FIT_PAD"}`, audio, ref),
		FPS:  24, Width: 96, Height: 64, TotalFrames: 48, SegmentsTotal: 2}
	if peaks != nil {
		key, err := blob.UploadDerived(tenant, audio, "audio-16000", media.PeaksName)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Blob.Put(ctx, key, bytes.NewReader(peaks), int64(len(peaks)), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		j.WaveformKey = string(key)
	}
	if _, err := c.Store.CreateJob(ctx, store.NewJob{Job: j}); err != nil {
		t.Fatal(err)
	}
	return id, audio
}

// level is a peak byte as the API gives it: 0..1, to three decimals.
func level(b byte) float64 { return math.Round(float64(b)/255*1000) / 1000 }

// TestWaveform: GET /jobs/{id}/waveform reduces the envelope of a job's
// audio (a peak per 10 ms), over the job's video only, to ?buckets= maxima;
// past the audio's end is silence; bad buckets, another tenant, an unknown
// job, a silent job and one whose audio is not taken in yet are answered
// with the API's errors; /status shows the audio, the inputs the
// reference, and the cues of a job as long as its audio (planned from the
// frames intake recorded).
func TestWaveform(t *testing.T) {
	// The gateway alone, dev mode, serving the talking head ref-talk: a spec
	// of its lasts as long as its audio, planned only at intake.
	c := devstacktest.Connect(t, 0)
	srv := newGateway(t, gateway.Config{Pools: "default:ref,sim,ref-talk", MaxBody: 4096}, c)
	tenant := freshTenant()
	// 2.5 s of audio for 2 s of video: the last 50 peaks, the loudest, are
	// past the video's end.
	long := make([]byte, 250)
	for k := range long {
		long[k] = byte(min(k, 255))
		if k >= 200 {
			long[k] = 255
		}
	}
	job, audio := audioJob(t, c, tenant, long)
	q := "?tenant=" + tenant

	r, v := call(t, srv, "GET", "/jobs/"+job+"/waveform"+q+"&buckets=4", "", true)
	want := map[string]any{"job_id": job, "peaks_per_s": 100.0, "duration_s": 2.0, "buckets": 4.0,
		"peaks": []any{level(49), level(99), level(149), level(199)}}
	if r.StatusCode != 200 || !reflect.DeepEqual(v, want) {
		t.Fatalf("4 buckets: %d %v, want %v", r.StatusCode, v, want)
	}
	// 1000 buckets by default: five to a peak.
	r, v = call(t, srv, "GET", "/jobs/"+job+"/waveform", "", true)
	peaks, _ := v["peaks"].([]any)
	if r.StatusCode != 200 || v["buckets"] != 1000.0 || len(peaks) != 1000 {
		t.Fatalf("default buckets: %d, %v buckets, %d peaks", r.StatusCode, v["buckets"], len(peaks))
	}
	for i, p := range peaks {
		if p != level(byte(i/5)) {
			t.Fatalf("bucket %d of 1000: %v, want the peak %d's %v", i, p, i/5, level(byte(i/5)))
		}
	}
	// 1.5 s of audio for 2 s of video: the video's last half second is silent.
	short, _ := audioJob(t, c, tenant, bytes.Repeat([]byte{128}, 150))
	if r, v := call(t, srv, "GET", "/jobs/"+short+"/waveform"+q+"&buckets=4", "", true); r.StatusCode != 200 ||
		!reflect.DeepEqual(v["peaks"], []any{level(128), level(128), level(128), 0.0}) {
		t.Fatalf("audio shorter than the video: %d %v", r.StatusCode, v)
	}

	for _, b := range []string{"0", "10001", "-3", "many"} {
		if r, v := call(t, srv, "GET", "/jobs/"+job+"/waveform?buckets="+b, "", true); r.StatusCode != 400 ||
			v["code"] != "invalid_argument" || v["field"] != "buckets" || !strings.Contains(fmt.Sprint(v["message"]), "1..10000") {
			t.Errorf("buckets=%s: %d %v", b, r.StatusCode, v)
		}
	}
	if r, v := call(t, srv, "GET", "/jobs/"+job+"/waveform?tenant=someone-else", "", true); r.StatusCode != 404 || v["code"] != "not_found" {
		t.Errorf("another tenant's job: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/jobs/"+job+"/waveform?tenant=no%20such!", "", true); r.StatusCode != 400 || v["field"] != "tenant" {
		t.Errorf("a malformed tenant: %d %v", r.StatusCode, v)
	}
	if r, v := call(t, srv, "GET", "/jobs/no-such-job/waveform", "", true); r.StatusCode != 404 || v["code"] != "not_found" {
		t.Errorf("an unknown job: %d %v", r.StatusCode, v)
	}
	silent := createJob(t, c.Store, "silent", store.JobSucceeded)
	if r, v := call(t, srv, "GET", "/jobs/"+silent+"/waveform", "", true); r.StatusCode != 404 || v["code"] != "not_found" ||
		!strings.Contains(fmt.Sprint(v["message"]), "job "+silent+" has no audio") {
		t.Errorf("a job without audio: %d %v", r.StatusCode, v)
	}
	pending, _ := audioJob(t, c, tenant, nil)
	if r, v := call(t, srv, "GET", "/jobs/"+pending+"/waveform", "", true); r.StatusCode != 404 || v["code"] != "not_ready" ||
		r.Header.Get("Retry-After") == "" {
		t.Errorf("a job whose audio is not taken in yet: %d %v (Retry-After %q)", r.StatusCode, v, r.Header.Get("Retry-After"))
	}

	// /status: the audio, its video's length and its waveform; the
	// reference among the inputs, fitted.
	r, v = call(t, srv, "GET", "/status/"+job, "", true)
	if want := map[string]any{"upload": audio, "duration_s": 2.0, "waveform": "/jobs/" + job + "/waveform"}; r.StatusCode != 200 ||
		!reflect.DeepEqual(v["audio"], want) {
		t.Errorf("status: audio %v, want %v", v["audio"], want)
	}
	if cues, _ := v["cues"].([]any); len(cues) != 1 || cues[0].(map[string]any)["prompt"] != "a reading" {
		t.Errorf("status: cues %v, want its one prompt, planned over the frames of its audio", v["cues"])
	}
	if in, _ := v["inputs"].(map[string]any); in["audio"] != audio || !strings.HasPrefix(fmt.Sprint(in["reference"]), blob.UploadIDPrefix) ||
		in["fit"] != "pad" {
		t.Errorf("status: inputs %v, want the audio, the reference and fit pad", v["inputs"])
	}
	if _, v := call(t, srv, "GET", "/status/"+pending, "", true); !reflect.DeepEqual(v["audio"], map[string]any{"upload": v["inputs"].(map[string]any)["audio"], "duration_s": 2.0}) {
		t.Errorf("status of a job whose audio is not taken in: audio %v, want no waveform", v["audio"])
	}
	if _, v := call(t, srv, "GET", "/status/"+silent, "", true); v["audio"] != nil {
		t.Errorf("status of a silent job: audio %v", v["audio"])
	}
	// /models/info says which models take audio, at what rate, and which
	// are talking heads (its workers registry is the topology's).
	if err := c.Bus.Declare(context.Background()); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Models []struct {
			Name            string
			AudioSampleRate int  `json:"audio_sample_rate"`
			TalkingHead     bool `json:"talking_head"`
		}
	}
	getJSON(t, srv, "/models/info", &info)
	talk := map[string]bool{}
	for _, m := range info.Models {
		if m.TalkingHead && m.AudioSampleRate > 0 {
			talk[m.Name] = true
		}
		if m.Name == "ref" && (m.TalkingHead || m.AudioSampleRate != 0) {
			t.Errorf("models/info: ref %+v, a silent model", m)
		}
	}
	if !talk["ref-talk"] {
		t.Errorf("models/info: talking heads with an audio rate %v, want ref-talk among them", talk)
	}
}
