package systest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/services/spoolctl/systest"
)

// TestDashboardDrawsWaveform: under the segment timeline of a job with
// audio the dashboard draws the waveform of its sound, fetched with as
// many buckets as the canvas is wide, on the video's time axis: the
// canvas spans the segments' row from the first frame to the last, and
// the sound's loud first second fills the left half of it. A silent job
// has no waveform. The player is not muted and has its controls.
func TestDashboardDrawsWaveform(t *testing.T) {
	browser := systest.NeedChromium(t)
	sys := systest.Start(t, 0, 0)
	ctx := context.Background()
	run := time.Now().UnixNano() % 1e9 // the database outlives one run of the test
	talking, silent := fmt.Sprintf("waveform-talk-%d", run), fmt.Sprintf("waveform-silent-%d", run)

	// 2 s of video (48 frames at 24 fps) in two segments, over 2 s of
	// sound: a loud first second, then silence.
	audio, ref := blob.NewUploadID(), blob.NewUploadID()
	key, err := blob.UploadDerived("default", audio, "audio-16000", media.PeaksName)
	if err != nil {
		t.Fatal(err)
	}
	peaks := append(bytes.Repeat([]byte{255}, 100), make([]byte, 100)...)
	if _, err := sys.Blob.Put(ctx, key, bytes.NewReader(peaks), int64(len(peaks)), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	jobs := []store.NewJob{
		{Job: store.Job{ID: talking, Tenant: "default", Priority: 5, Pool: systest.Pool, Model: "ref-talk", Mode: "chain", State: store.JobQueued,
			Spec: fmt.Appendf(nil, `{"prompt":"a reading","model":"ref-talk","audio":%q,"reference":%q}`, audio, ref),
			FPS:  24, Width: 96, Height: 64, TotalFrames: 48, SegmentsTotal: 2, AudioKey: string(key) + ".json", WaveformKey: string(key)},
			Segments: []store.Segment{{Index: 0, Frames: 30, Prompt: "a reading", Pool: systest.Pool},
				{Index: 1, FirstFrame: 26, Frames: 22, Overlap: 4, Prompt: "a reading", Pool: systest.Pool}}},
		{Job: store.Job{ID: silent, Tenant: "default", Priority: 5, Pool: systest.Pool, Model: "ref", Mode: "chain", State: store.JobQueued,
			Spec: []byte(`{"prompt":"x","durationFrames":48}`), FPS: 24, Width: 96, Height: 64, TotalFrames: 48, SegmentsTotal: 1},
			Segments: []store.Segment{{Index: 0, Frames: 48, Prompt: "x", Pool: systest.Pool}}},
	}
	for _, nj := range jobs {
		if _, err := sys.Store.CreateJob(ctx, nj); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := browser.Run(ctx, "waveform.mjs", sys.DashboardURL(), talking, silent)
	if err != nil {
		t.Fatalf("the dashboard driver: %v", err)
	}
	var saw struct {
		Errors, FailedRequests, WaveformRequests []string
		Audio                                    *struct {
			Painted                                 int
			Heights                                 []float64
			CanvasLeft, CanvasRight, CanvasCSSWidth float64
			Pieces                                  []struct {
				Text        string
				Left, Right float64
			}
			Ticks           []string
			Muted, Controls bool
		}
		Silent *struct {
			Canvases, SoundRows int
			Timeline            string
		}
	}
	if err := json.Unmarshal(out, &saw); err != nil {
		t.Fatalf("the driver's report %q: %v", out, err)
	}
	if len(saw.Errors) > 0 || len(saw.FailedRequests) > 0 || saw.Audio == nil || saw.Silent == nil {
		t.Fatalf("errors in the page: %q; failed requests: %q", saw.Errors, saw.FailedRequests)
	}
	a := saw.Audio
	t.Logf("waveform %.0f CSS px wide at %.0f..%.0f, %d painted pixels; segments %+v; ticks %q; requests %q",
		a.CanvasCSSWidth, a.CanvasLeft, a.CanvasRight, a.Painted, a.Pieces, a.Ticks, saw.WaveformRequests)
	if a.Painted == 0 {
		t.Fatal("the waveform canvas is blank")
	}
	want := fmt.Sprintf("/jobs/%s/waveform?buckets=%d", talking, int(math.Round(a.CanvasCSSWidth)))
	if len(saw.WaveformRequests) == 0 || saw.WaveformRequests[0] != want {
		t.Errorf("waveform requests %q, want %q: a bucket per CSS pixel", saw.WaveformRequests, want)
	}
	// On the segments' time axis: segment 0 starts where the canvas does,
	// segment 1 ends where it does.
	if len(a.Pieces) != 2 || math.Abs(a.Pieces[0].Left-a.CanvasLeft) > 1 || math.Abs(a.Pieces[1].Right-a.CanvasRight) > 1 {
		t.Errorf("segments %+v over a waveform at %.1f..%.1f: want them to span it", a.Pieces, a.CanvasLeft, a.CanvasRight)
	}
	// The loud first second fills its half of the canvas, top to bottom;
	// the silent second draws no bar taller than a hairline.
	n := len(a.Heights)
	loud := slices.IndexFunc(a.Heights, func(h float64) bool { return h < 0.5 })
	if loud < 0 || math.Abs(float64(loud)-float64(n)/2) > float64(n)/100+2 {
		t.Errorf("the loud part ends at column %d of %d, want the middle", loud, n)
	}
	if slices.Min(a.Heights[:n/2-n/50]) < 0.9 || slices.Max(a.Heights[n/2+n/50:]) > 0.15 {
		t.Errorf("bar heights: loud half from %.2f, silent half up to %.2f of the canvas", slices.Min(a.Heights[:n/2-n/50]),
			slices.Max(a.Heights[n/2+n/50:]))
	}
	if !slices.Equal(a.Ticks, []string{"0.0 s", "0.5 s", "1.0 s", "1.5 s", "2.0 s"}) {
		t.Errorf("video time axis %q", a.Ticks)
	}
	if a.Muted || !a.Controls {
		t.Errorf("the player: muted %v, controls %v; want its sound and its controls", a.Muted, a.Controls)
	}
	if s := saw.Silent; s.Canvases != 0 || s.SoundRows != 0 {
		t.Errorf("a silent job: %d canvases, %d sound rows under the timeline %q", s.Canvases, s.SoundRows, s.Timeline)
	}
}
