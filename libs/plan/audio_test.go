package plan

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The sample rates the catalog may give, and those of common files.
var testRates = []int{8000, 16000, 22050, 24000, 44100, 48000, 96000, 192000}

// TestSamplesTileTheAudio: for every fps 1..60 and rate, random plans'
// segments read overlapping sample ranges whose kept parts tile the audio
// exactly, each range is round(a·rate/fps) .. round(b·rate/fps) computed in
// floating point, and a segment's overlap reads the samples of the frames
// it repeats.
func TestSamplesTileTheAudio(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for fps := 1; fps <= 60; fps++ {
		for _, rate := range testRates {
			window := 2 + rng.IntN(60)
			overlap := rng.IntN(window - 1)
			total := int64(1 + rng.IntN(2000))
			p, err := New(Spec{TotalFrames: total, Window: window, Overlap: overlap, Align: 1, Mode: Chain,
				Timeline: Single("a")})
			if err != nil {
				t.Fatalf("fps %d rate %d: plan: %v", fps, rate, err)
			}
			segs, err := p.All()
			if err != nil {
				t.Fatal(err)
			}
			next := int64(0) // the first sample no kept frame has read yet
			for _, s := range segs {
				lo, hi := Samples(s.FirstFrame, s.FirstFrame+int64(s.Frames), fps, rate)
				want := math.Floor(float64(s.FirstFrame)*float64(rate)/float64(fps) + 0.5)
				if float64(lo) != want {
					t.Fatalf("fps %d rate %d: segment %d starts at sample %d, round(a·rate/fps) = %v", fps, rate, s.Index, lo, want)
				}
				olo, ohi := Samples(s.FirstFrame, s.NewStart(), fps, rate)
				if olo != lo || (s.Index > 0 && ohi > next) {
					t.Fatalf("fps %d rate %d: segment %d's overlap reads [%d, %d), beyond the samples already kept (%d)", fps, rate, s.Index, olo, ohi, next)
				}
				klo, khi := Samples(s.NewStart(), s.NewEnd(), fps, rate)
				if klo != next {
					t.Fatalf("fps %d rate %d: segment %d keeps samples from %d, the previous ended at %d", fps, rate, s.Index, klo, next)
				}
				if hi < khi {
					t.Fatalf("fps %d rate %d: segment %d reads [%d, %d), short of its kept frames' end %d", fps, rate, s.Index, lo, hi, khi)
				}
				next = khi
			}
			if want := SampleAt(total, fps, rate); next != want {
				t.Fatalf("fps %d rate %d: %d frames kept samples [0, %d), want [0, %d)", fps, rate, total, next, want)
			}
		}
	}
}

func TestSampleAtRoundsHalvesUp(t *testing.T) {
	for _, c := range []struct {
		f         int64
		fps, rate int
		want      int64
	}{
		{0, 24, 16000, 0}, {1, 24, 16000, 667}, {3, 24, 16000, 2000}, {1, 48000, 1, 0}, {1, 2, 1, 1},
		{-1, 24, 16000, -667}, {-1, 2, 1, 0}, {1, 30, 44100, 1470}, {1, 60, 22050, 368},
	} {
		if got := SampleAt(c.f, c.fps, c.rate); got != c.want {
			t.Errorf("SampleAt(%d, %d, %d) = %d, want %d", c.f, c.fps, c.rate, got, c.want)
		}
	}
}

// TestFramesOfSamples: a track of n samples gives the frame count whose
// samples end nearest n, at least 1.
func TestFramesOfSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 20000; i++ {
		fps, rate := 1+rng.IntN(60), testRates[rng.IntN(len(testRates))]
		n := 1 + rng.Int64N(int64(rate)*3600)
		f := FramesOfSamples(n, fps, rate)
		if f < 1 {
			t.Fatalf("FramesOfSamples(%d, %d, %d) = %d", n, fps, rate, f)
		}
		if f > 1 && math.Abs(float64(f)-float64(n)*float64(fps)/float64(rate)) > 0.5 {
			t.Fatalf("FramesOfSamples(%d, %d, %d) = %d, want round(%v)", n, fps, rate, f, float64(n)*float64(fps)/float64(rate))
		}
	}
	if FramesOfSamples(0, 24, 16000) != 0 || FramesOfSamples(1, 24, 16000) != 1 {
		t.Fatal("FramesOfSamples of 0 and 1 samples")
	}
}

func TestPingPong(t *testing.T) {
	want := []int64{0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2}
	for tt, w := range want {
		if got := PingPong(int64(tt), 4); got != w {
			t.Errorf("PingPong(%d, 4) = %d, want %d", tt, got, w)
		}
	}
	for tt := int64(-5); tt < 50; tt++ {
		if PingPong(tt, 1) != 0 {
			t.Fatalf("PingPong(%d, 1) != 0", tt)
		}
		if p := PingPong(tt, 2); p != (tt%2+2)%2 {
			t.Fatalf("PingPong(%d, 2) = %d", tt, p)
		}
		if PingPong(tt, 5) != PingPong(-tt, 5) {
			t.Fatalf("PingPong(%d, 5) is not its mirror", tt)
		}
	}
}
