package workerbench

import (
	"context"
	"fmt"
	"time"

	"github.com/spoolvideo/spool/services/worker/worker"
)

// Overhead is the "worker_overhead" object of bench/results.json.
type Overhead struct {
	Segments  int     `json:"segments"`
	EngineMS  float64 `json:"engine_ms"`  // per segment: denoise and decode
	PrepareMS float64 `json:"prepare_ms"` // per segment: fetch to engine start (cancel check, tail download, encoder start)
	FinishMS  float64 `json:"finish_ms"`  // per segment: engine end to DONE (encode tail, retime, upload, publish)
	// Ratio is (prepare + finish) ÷ engine: all of the worker's own time.
	Ratio float64 `json:"ratio"`
	// CriticalRatio is prepare ÷ engine: the part a chain waits for; the
	// finish runs behind the next segment.
	CriticalRatio float64 `json:"critical_ratio"`
	EncodeMS      float64 `json:"encode_ms"` // per segment, from the DONE timings
	UploadMS      float64 `json:"upload_ms"`
}

// RunOverhead runs a 720p chain job on the ref backend (121-frame windows,
// 30 steps) through one slot and splits each segment's time into the
// engine's and the worker's own.
func RunOverhead(ctx context.Context, o Options) (Overhead, error) {
	segments, steps := 4, 30
	if o.Short {
		segments, steps = 2, 4
	}
	r, err := setup(ctx, "overhead", 8)
	if err != nil {
		return Overhead{}, err
	}
	defer r.close()
	w, err := r.worker(ctx, worker.Config{ID: "overhead", Backend: "ref", Slots: 1})
	if err != nil {
		return Overhead{}, err
	}
	// 720p chain: windows of 121 frames overlapping by 37.
	frames := 121 + (segments-1)*(121-37)
	spec := fmt.Sprintf(`{"id":"overhead","prompt":"a lighthouse in a gale","resolution":"RESOLUTION_720P","durationFrames":%d,`+
		`"windowFrames":121,"overlapFrames":37,"steps":%d,"fps":24,"pool":"overhead"}`, frames, steps)
	if err := r.submit(ctx, spec); err != nil {
		return Overhead{}, err
	}
	if err := r.waitDone(ctx, segments, 10*time.Minute, "overhead"); err != nil {
		return Overhead{}, err
	}
	st := w.Stats()
	for st.Segments < int64(segments) { // DONE commits before the slot's books close
		time.Sleep(time.Millisecond)
		st = w.Stats()
	}
	n := float64(st.Segments)
	ov := Overhead{Segments: int(st.Segments), EngineMS: ms(st.Engine) / n, PrepareMS: ms(st.Prepare) / n, FinishMS: ms(st.Finish) / n}
	ov.Ratio, ov.CriticalRatio = (ov.PrepareMS+ov.FinishMS)/ov.EngineMS, ov.PrepareMS/ov.EngineMS
	for i := range segments {
		at, err := r.store.ListAttempts(ctx, "overhead", i)
		if err != nil || len(at) == 0 {
			return Overhead{}, fmt.Errorf("overhead: attempts of segment %d: %v", i, err)
		}
		ov.EncodeMS += float64(at[len(at)-1].Timings.EncodeMS) / float64(segments)
		ov.UploadMS += float64(at[len(at)-1].Timings.UploadMS) / float64(segments)
	}
	o.logf("overhead: %+v", ov)
	return ov, nil
}
