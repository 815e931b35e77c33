package workerbench

import (
	"context"
	"fmt"
	"time"

	"github.com/spoolvideo/spool/services/worker/worker"
)

// Busy is the "busy" object of bench/results.json.
type Busy struct {
	Ratio     float64 `json:"ratio"`
	Slots     int     `json:"slots"`
	Segments  int     `json:"segments"`
	SegmentMS float64 `json:"segment_ms"` // the engine's time per segment
	PrepareMS float64 `json:"prepare_ms"` // per segment, before the engine starts
	FinishMS  float64 `json:"finish_ms"`  // per segment, behind the engine
}

// RunBusy keeps two sim slots fed with 200 ms independent segments (10
// steps × 20 ms, 9 frames of 64×64 each, encoded by ffmpeg and uploaded)
// and measures the share of their wall time spent inside the engine while
// the queue is full: between the moments when 2 × slots and total − 4 ×
// slots segments have finished.
func RunBusy(ctx context.Context, o Options) (Busy, error) {
	const slots = 2
	total := 80
	if o.Short {
		total = 24
	}
	r, err := setup(ctx, "busy", 16)
	if err != nil {
		return Busy{}, err
	}
	defer r.close()
	w, err := r.worker(ctx, worker.Config{ID: "busy", Backend: "sim", Params: "step_ms=20", Slots: slots})
	if err != nil {
		return Busy{}, err
	}
	spec := fmt.Sprintf(`{"id":"busy","prompt":"a busy harbour","model":"sim","mode":"MODE_INDEPENDENT","durationFrames":%d,`+
		`"windowFrames":9,"overlapFrames":1,"width":64,"height":64,"steps":10,"fps":24,"pool":"busy"}`, 8*total+1)
	if err := r.submit(ctx, spec); err != nil {
		return Busy{}, err
	}
	sample := func(n int64) (worker.Stats, time.Time, error) {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if st := w.Stats(); st.Segments >= n {
				return st, time.Now(), nil
			}
			if time.Now().After(deadline) {
				return worker.Stats{}, time.Time{}, fmt.Errorf("busy: %d segments not finished in time", n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	s0, t0, err := sample(2 * slots)
	if err != nil {
		return Busy{}, err
	}
	s1, t1, err := sample(int64(total - 4*slots))
	if err != nil {
		return Busy{}, err
	}
	if err := r.waitDone(ctx, total, time.Minute, "busy"); err != nil {
		return Busy{}, err
	}
	n := float64(s1.Segments - s0.Segments)
	b := Busy{Ratio: float64(s1.Engine-s0.Engine) / float64(t1.Sub(t0)*slots), Slots: slots, Segments: total,
		SegmentMS: ms(s1.Engine-s0.Engine) / n, PrepareMS: ms(s1.Prepare-s0.Prepare) / n, FinishMS: ms(s1.Finish-s0.Finish) / n}
	o.logf("busy: %+v fetch/seg %.2fms", b, ms(s1.Fetch-s0.Fetch)/n)
	return b, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
