package gateway

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBucketPeaks: each bucket is the loudest peak whose 10 ms overlap
// its share of the video, so no peak inside the video is lost and none
// past its end counts; a video longer than its audio ends in silence.
func TestBucketPeaks(t *testing.T) {
	for _, c := range []struct {
		name       string
		peaks      []byte
		total, fps int64
		buckets    int
		want       []float64
	}{
		{"one per peak", []byte{0, 51, 255}, 3, 100, 3, []float64{0, 0.2, 1}},
		{"two peaks a bucket", []byte{10, 255, 51, 0}, 4, 100, 2, []float64{1, 0.2}},
		{"past the video's end", []byte{51, 51, 255, 255}, 2, 100, 1, []float64{0.2}},
		{"past the audio's end", []byte{255}, 4, 100, 2, []float64{1, 0}},
		{"more buckets than peaks", []byte{51, 255}, 2, 100, 4, []float64{0.2, 0.2, 1, 1}},
		// 25 frames at 24 fps are 104.17 peaks: the 105th, index 104, sounds at the end.
		{"a partial last peak", append(make([]byte, 104), 255, 255), 25, 24, 1, []float64{1}},
		{"no envelope", nil, 24, 24, 3, []float64{0, 0, 0}},
	} {
		if got := bucketPeaks(c.peaks, c.total, int(c.fps), c.buckets); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Any bucket count: the loudest bucket is the loudest peak.
	peaks := make([]byte, 1234)
	for i := range peaks {
		peaks[i] = byte(rand.IntN(200))
	}
	peaks[rand.IntN(len(peaks))] = 255
	for _, n := range []int{1, 7, 100, 1234, 5000, 10000} {
		got := bucketPeaks(peaks, 1234*24/100, 24, n)
		if len(got) != n || slices.Max(got) != 1 {
			t.Errorf("%d buckets: %d values, max %v", n, len(got), slices.Max(got))
		}
	}
}
