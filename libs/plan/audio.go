package plan

// Sound on the video's timeline. Frame f of a video at fps frames per
// second starts at f/fps seconds; audio at rate Hz has sample s at
// s/rate seconds. Frames [a, b) own samples [SampleAt(a), SampleAt(b)):
// since the bounds are a function of the frame index alone, consecutive
// frame ranges own consecutive sample ranges, so that segments that tile
// the frames tile the samples, none lost or doubled, and a segment's
// overlap frames read the same samples as the frames they repeat.

// SampleAt is the first sample of frame f: round(f·rate/fps), halves
// rounded up, for any f (negative in an extension's conditioning frames).
// fps and rate must be ≥ 1; the product f·rate must fit an int64 (f up to
// 10^13 at 384 kHz).
func SampleAt(f int64, fps, rate int) int64 {
	return floorDiv(2*f*int64(rate)+int64(fps), 2*int64(fps))
}

// Samples is the sample range [lo, hi) of frames [a, b): SampleAt(a) and
// SampleAt(b).
func Samples(a, b int64, fps, rate int) (lo, hi int64) {
	return SampleAt(a, fps, rate), SampleAt(b, fps, rate)
}

// FramesOfSamples is how many frames n samples at rate last at fps:
// round(n·fps/rate), halves rounded up, at least 1 for n ≥ 1, so that a
// job made to last as long as its audio has a frame for a clip shorter
// than half a frame.
func FramesOfSamples(n int64, fps, rate int) int64 {
	if n <= 0 {
		return 0
	}
	return max(1, floorDiv(2*n*int64(fps)+int64(rate), 2*int64(rate)))
}

// PingPong is the frame of an R-frame reference clip that frame t of a
// longer video shows when the clip is played forwards, then backwards,
// and so on without repeating its end frames: with m = t mod (2R−2), m if
// m < R, else 2R−2−m. Frame 0 for R = 1, and for t < 0 the mirror image
// (t and −t show the same frame). R must be ≥ 1.
func PingPong(t int64, r int) int64 {
	if r <= 1 {
		return 0
	}
	if t < 0 {
		t = -t
	}
	period := 2*int64(r) - 2
	m := t % period
	if m < int64(r) {
		return m
	}
	return period - m
}

// floorDiv is ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
