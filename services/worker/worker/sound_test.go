package worker

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/spoolvideo/spool/libs/plan"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// memReader serves ranged reads of data and counts the bytes read.
func memReader(data []byte, read *int64) RangeReader {
	return func(_ context.Context, off, n int64) ([]byte, error) {
		*read += n
		return data[off : off+n], nil
	}
}

// TestSegmentAudioTilesTheTrack: the segments of random chain plans read
// exactly their frames' samples (overlap included) by one ranged read of no
// more than those bytes; the kept frames' samples, in order, are the track,
// none lost or doubled; samples past the track's end are silence.
func TestSegmentAudioTilesTheTrack(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 300; i++ {
		fps, rate := 1+rng.IntN(60), []int{8000, 16000, 22050, 44100, 48000}[rng.IntN(5)]
		window := 2 + rng.IntN(40)
		overlap := 1 + rng.IntN(window-1)
		total := int64(1 + rng.IntN(400))
		n := plan.SampleAt(total, fps, rate) - int64(rng.IntN(3)) // the track may end a little early
		track := make([]byte, 4*max(n, 0))
		for s := range max(n, 0) {
			binary.LittleEndian.PutUint32(track[4*s:], math.Float32bits(float32(s+1)))
		}
		p, err := plan.New(plan.Spec{TotalFrames: total, Window: window, Overlap: overlap, Align: 1, Mode: plan.Chain, Timeline: plan.Single("a")})
		if err != nil {
			t.Fatal(err)
		}
		segs, _ := p.All()
		var kept []float32
		for _, s := range segs {
			task := &spoolv1.SegmentTask{FirstFrame: s.FirstFrame, Frames: uint32(s.Frames), Overlap: uint32(s.Overlap), Fps: uint32(fps),
				AudioKey: "k", AudioRate: uint32(rate), AudioSamples: max(n, 0)}
			var read int64
			got, err := SegmentAudio(context.Background(), task, memReader(track, &read))
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := plan.Samples(s.FirstFrame, s.FirstFrame+int64(s.Frames), fps, rate)
			if int64(len(got)) != hi-lo || read > 4*(hi-lo) {
				t.Fatalf("segment %d: %d samples from %d bytes read, want %d", s.Index, len(got), read, hi-lo)
			}
			klo, _ := plan.Samples(s.NewStart(), s.NewEnd(), fps, rate)
			kept = append(kept, got[klo-lo:]...)
		}
		if int64(len(kept)) != plan.SampleAt(total, fps, rate) {
			t.Fatalf("%d samples kept, want %d", len(kept), plan.SampleAt(total, fps, rate))
		}
		for s, v := range kept {
			want := float32(s + 1)
			if int64(s) >= n {
				want = 0
			}
			if v != want {
				t.Fatalf("fps %d rate %d: sample %d is %v, want %v", fps, rate, s, v, want)
			}
		}
	}
}

// TestSegmentReferencePingPong: each frame of a segment shows the
// reference frame of the back-and-forth loop, read in one range.
func TestSegmentReferencePingPong(t *testing.T) {
	const w, h = 4, 2
	size := w * h * 3
	for _, r := range []int{1, 2, 5} {
		ref := make([]byte, r*size)
		for f := range r {
			for i := range size {
				ref[f*size+i] = byte(f + 1)
			}
		}
		for _, first := range []int64{-3, 0, 7, 100} {
			task := &spoolv1.SegmentTask{FirstFrame: first, Frames: 11, Width: w, Height: h, ReferenceKey: "k", ReferenceFrames: uint32(r)}
			var read int64
			got, err := SegmentReference(context.Background(), task, memReader(ref, &read))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 11*size || read > int64(min(r, 11)*size) {
				t.Fatalf("R %d first %d: %d bytes, %d read", r, first, len(got), read)
			}
			for i := range 11 {
				if want := byte(plan.PingPong(first+int64(i), r) + 1); got[i*size] != want || got[i*size+size-1] != want {
					t.Fatalf("R %d first %d: frame %d shows reference %d, want %d", r, first, i, got[i*size]-1, want-1)
				}
			}
		}
	}
}
