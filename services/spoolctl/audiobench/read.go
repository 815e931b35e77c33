package audiobench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spoolvideo/spool/libs/bench"
	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/plan"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// SegmentRead is a worker's audio read for one segment of the plan.
type SegmentRead struct {
	At         string  `json:"at"` // start, middle or end
	Index      int64   `json:"index"`
	FirstFrame int64   `json:"first_frame"`
	Frames     int     `json:"frames"`
	Samples    int     `json:"samples"`
	Bytes      int64   `json:"bytes"` // read from MinIO
	Reads      int     `json:"reads"`
	P50MS      float64 `json:"p50_ms"`
	MaxMS      float64 `json:"max_ms"`
}

// positions are the segments read: the first, the middle one and the last.
func positions(count int64) []struct {
	at    string
	index int64
} {
	return []struct {
		at    string
		index int64
	}{{"start", 0}, {"middle", count / 2}, {"end", count - 1}}
}

// readSegments times worker.SegmentAudio, reads times, for each of the
// positions of job j's plan: the task is the dispatcher's (Template, then
// Sound.Apply), the read a ranged read of MinIO, as the worker's.
func readSegments(ctx context.Context, bl *blob.Store, j jobspec.Job, jobID string, s dispatcher.Sound, reads int) ([]SegmentRead, error) {
	key, err := blob.ParseUploadDerivedKey(s.AudioKey)
	if err != nil {
		return nil, err
	}
	var got int64
	read := func(ctx context.Context, off, n int64) ([]byte, error) {
		got += n
		return bl.ReadRange(ctx, key, off, n)
	}
	var out []SegmentRead
	for _, p := range positions(j.Plan.Count()) {
		seg, err := j.Plan.Segment(p.index)
		if err != nil {
			return nil, err
		}
		t := dispatcher.Template(j, jobID, seg, p.index == j.Plan.Count()-1)
		s.Apply(t, j)
		r := SegmentRead{At: p.at, Index: p.index, FirstFrame: seg.FirstFrame, Frames: seg.Frames, Reads: reads}
		lo, hi := plan.Samples(t.FirstFrame, t.FirstFrame+int64(t.Frames), int(t.Fps), int(t.AudioRate))
		var ms []float64
		for i := -1; i < reads; i++ { // one read first, not counted
			got = 0
			start := time.Now()
			samples, err := worker.SegmentAudio(ctx, t, read)
			if err != nil {
				return nil, fmt.Errorf("audio bench: segment %d: %w", p.index, err)
			}
			d := time.Since(start)
			if int64(len(samples)) != hi-lo {
				return nil, fmt.Errorf("audio bench: segment %d: %d samples, want %d", p.index, len(samples), hi-lo)
			}
			r.Samples, r.Bytes = len(samples), got
			if i >= 0 {
				ms = append(ms, float64(d)/float64(time.Millisecond))
			}
		}
		r.P50MS, r.MaxMS = bench.Median(ms), slices.Max(ms)
		out = append(out, r)
	}
	return out, nil
}

// readWhole times reading the whole PCM object into memory, times, and
// returns the median in ms: what each worker would read without ranged
// reads.
func readWhole(ctx context.Context, bl *blob.Store, key blob.Key, size int64, times int) (float64, error) {
	buf := make([]byte, size)
	var ms []float64
	for range times {
		start := time.Now()
		r, _, err := bl.Get(ctx, key)
		if err != nil {
			return 0, err
		}
		_, err = io.ReadFull(r, buf)
		_ = r.Close()
		if err != nil {
			return 0, fmt.Errorf("audio bench: read the whole track: %w", err)
		}
		ms = append(ms, float64(time.Since(start))/float64(time.Millisecond))
	}
	return bench.Median(ms), nil
}
