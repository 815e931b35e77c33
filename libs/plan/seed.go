package plan

// SegmentSeed derives segment index's seed from the job seed. It is a pure
// function, so a retried segment regenerates the same frames, and neighbouring
// indices get unrelated seeds (splitmix64 finalisation of both inputs).
func SegmentSeed(jobSeed uint64, index int64) uint64 {
	return mix64(jobSeed ^ mix64(uint64(index)+0x9e3779b97f4a7c15))
}

// mix64 is the splitmix64 finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
