package media

import (
	"math/rand/v2"
	"testing"
)

// TestPacketsForTilesThePackets: for random frame cuts, fps 1..60 and
// priming, pieces carry consecutive packets from 0, each packet's middle
// within its piece's time, and every packet presented before the video's
// end (its middle) is carried.
func TestPacketsForTilesThePackets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		fps := 1 + rng.IntN(60)
		tr := AACTrack{SampleRate: []int{44100, 48000}[rng.IntN(2)], Priming: []int{0, 1024, 2112}[rng.IntN(3)], Packets: 1 + rng.IntN(5000)}
		total := int64(1 + rng.IntN(3000))
		next, at := 0, int64(0)
		for at < total {
			b := min(total, at+int64(1+rng.IntN(200)))
			k0, k1 := tr.PacketsFor(at, b, fps)
			if k0 != next || k1 < k0 {
				t.Fatalf("%+v fps %d: frames [%d, %d) carry packets [%d, %d), want from %d", tr, fps, at, b, k0, k1, next)
			}
			for k := k0; k < k1; k++ {
				mid := float64(k*AACFrameSamples-tr.Priming+AACFrameSamples/2) / float64(tr.SampleRate)
				if (at > 0 && mid < float64(at)/float64(fps)) || mid >= float64(b)/float64(fps) {
					t.Fatalf("%+v fps %d: packet %d (middle at %.4f s) in frames [%d, %d)", tr, fps, k, mid, at, b)
				}
			}
			next, at = k1, b
		}
		if next < tr.Packets {
			mid := float64(next*AACFrameSamples-tr.Priming+AACFrameSamples/2) / float64(tr.SampleRate)
			if mid < float64(total)/float64(fps) {
				t.Fatalf("%+v fps %d: packet %d (middle %.4f s) before the end of %d frames is carried by none", tr, fps, next, mid, total)
			}
		}
	}
}

func TestAACIndexRoundTrip(t *testing.T) {
	sizes := []int{300, 0, 17, 4096}
	offs, err := DecodeAACIndex(EncodeAACIndex(sizes))
	if err != nil || len(offs) != 5 || offs[0] != 0 || offs[2] != 300 || offs[4] != 4413 {
		t.Fatalf("%v %v", offs, err)
	}
	if _, err := DecodeAACIndex([]byte{1, 2, 3}); err == nil {
		t.Fatal("a ragged index was read")
	}
	bad := EncodeAACIndex(sizes)
	bad[15] = 0xff // offset 1 > offset 2
	if _, err := DecodeAACIndex(bad); err == nil {
		t.Fatal("a decreasing index was read")
	}
}
