package gateway

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
)

// The waveform of a job's audio: intake writes the audio's loudness
// envelope (media.PeaksName: one byte per 10 ms, the peak |sample| × 255)
// and records it as the job's WaveformKey; GET /jobs/{id}/waveform serves
// it over the job's video, reduced to as many bars as a client draws.

const (
	peaksPerS       = 100 // peaks in a second of audio: one per 10 ms
	defaultBuckets  = 1000
	maxBuckets      = 10000
	retryWaveform   = 2 // Retry-After, seconds, while intake takes the audio in
	waveformDecimal = 1000
)

// waveformView is the answer of GET /jobs/{id}/waveform.
type waveformView struct {
	JobID     string    `json:"job_id"`
	PeaksPerS int       `json:"peaks_per_s"` // of the envelope the buckets reduce
	DurationS float64   `json:"duration_s"`  // the job's video: total_frames / fps
	Buckets   int       `json:"buckets"`
	Peaks     []float64 `json:"peaks"` // per bucket, the loudest peak in it, 0..1
}

// audioView is a job's audio as /status shows it: its upload, the length
// of the video it drives, and where its waveform is once intake made it.
type audioView struct {
	Upload    string  `json:"upload"`
	DurationS float64 `json:"duration_s"` // the job's video: total_frames / fps; 0 until planned
	Waveform  string  `json:"waveform,omitempty"`
}

// audioOf is the audio of job j, whose inputs are in; nil for a silent job.
func audioOf(j store.Job, in *inputsView) *audioView {
	v := audioView{}
	if in != nil {
		v.Upload = in.Audio
	}
	if v.Upload == "" && j.AudioKey == "" && j.WaveformKey == "" {
		return nil
	}
	if j.TotalFrames > 0 && j.FPS > 0 {
		v.DurationS = float64(j.TotalFrames) / float64(j.FPS)
	}
	if j.WaveformKey != "" {
		v.Waveform = "/jobs/" + j.ID + "/waveform"
	}
	return &v
}

// waveform is GET /jobs/{id}/waveform?buckets=N: the loudness envelope of
// the job's audio over its video, in N buckets of equal time, each the
// maximum of the peaks it covers. 404 for a job that has no audio,
// not_ready while intake takes its audio in.
func (g *Gateway) waveform(w http.ResponseWriter, r *http.Request) {
	buckets, ok := bucketsParam(w, r)
	if !ok {
		return
	}
	id, ok := pathID(w, r, "job")
	if !ok {
		return
	}
	j, err := g.store.GetJob(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	if j.WaveformKey == "" {
		noWaveform(w, j)
		return
	}
	peaks, err := g.readPeaks(r, blob.Key(j.WaveformKey), peaksOver(j))
	if err != nil {
		fail(w, err)
		return
	}
	v := waveformView{JobID: j.ID, PeaksPerS: peaksPerS, Buckets: buckets}
	total, rate := j.TotalFrames, j.FPS
	if total <= 0 || rate <= 0 { // a length not planned: the audio's own
		total, rate = int64(len(peaks)), peaksPerS
	}
	v.DurationS = float64(total) / float64(rate)
	v.Peaks = bucketPeaks(peaks, total, rate, buckets)
	writeJSON(w, http.StatusOK, v)
}

// bucketsParam is the request's ?buckets=, checked: 1..maxBuckets, or
// defaultBuckets without one.
func bucketsParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("buckets")
	if s == "" {
		return defaultBuckets, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxBuckets {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "buckets",
			Message: fmt.Sprintf("buckets %q: want 1..%d, or none for %d", s, maxBuckets, defaultBuckets)})
		return 0, false
	}
	return n, true
}

// noWaveform answers for job j, which has no waveform (yet): 404
// not_found for a job without audio, or one that ended before its audio
// was taken in; 404 not_ready while intake may still write it.
func noWaveform(w http.ResponseWriter, j store.Job) {
	audio := j.AudioKey != ""
	if in := inputsOf(j.Spec); in != nil && in.Audio != "" {
		audio = true
	}
	switch {
	case !audio:
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("job %s has no audio, so no waveform", j.ID))
	case !j.State.Terminal():
		notReady(w, retryWaveform, fmt.Sprintf("job %s: its audio is not taken in yet", j.ID))
	default:
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("job %s is %s without a waveform of its audio", j.ID, j.State))
	}
}

// peaksOver is how many peaks of the envelope the job's video spans: its
// last peak is the one sounding at its end. -1, all of them, for a job
// whose length is not planned.
func peaksOver(j store.Job) int64 {
	if j.TotalFrames <= 0 || j.FPS <= 0 {
		return -1
	}
	return (j.TotalFrames*peaksPerS + int64(j.FPS) - 1) / int64(j.FPS)
}

// readPeaks reads the first n bytes of the envelope at key (all of it for
// n < 0); an envelope shorter than n is read whole.
func (g *Gateway) readPeaks(r *http.Request, key blob.Key, n int64) ([]byte, error) {
	body, _, err := g.blob.Get(r.Context(), key)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var src io.Reader = body
	if n >= 0 {
		src = io.LimitReader(body, n)
	}
	peaks, err := io.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("gateway: waveform %s: %w", key, err)
	}
	return peaks, nil
}

// bucketPeaks reduces an envelope of peaksPerS bytes a second to buckets
// values over a video of total frames at fps: bucket i spans the video's
// [i, i+1) × duration / buckets and is the largest peak whose 10 ms
// overlap it, scaled to 0..1 (to three decimals); peaks past the
// envelope's end are silence.
func bucketPeaks(peaks []byte, total int64, fps, buckets int) []float64 {
	out := make([]float64, buckets)
	// In peaks, bucket i spans [i·num/den, (i+1)·num/den); peak k, [k, k+1).
	num, den := total*peaksPerS, int64(buckets)*int64(fps)
	for i := range out {
		lo := int64(i) * num / den
		hi := (int64(i+1)*num + den - 1) / den
		hi = min(max(hi, lo+1), int64(len(peaks)))
		var m byte
		for k := lo; k < hi; k++ {
			m = max(m, peaks[k])
		}
		out[i] = math.Round(float64(m)/255*waveformDecimal) / waveformDecimal
	}
	return out
}
