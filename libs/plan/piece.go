package plan

// Piece is the run of frames that segment i contributes to the stitched
// video, as the stitcher cuts it: [first, first+frames).
//
//   - chain: the segment's new frames (its overlap repeats the previous
//     segment's frames and is dropped; trim frames are dropped);
//   - independent: from the segment's first frame (its leading overlap,
//     crossfaded with the previous segment's trailing one) up to where the
//     next segment's overlap begins; the last segment keeps its tail.
//
// The pieces tile [Start, Start+total) in order. For a bounded plan i must be <
// Count; a live plan has every i ≥ 0.
func (p *Plan) Piece(i int64) (first int64, frames int, err error) {
	s, err := p.Segment(i)
	if err != nil {
		return 0, 0, err
	}
	if p.spec.Mode == Chain {
		return s.NewStart(), s.NewFrames(), nil
	}
	next := 0 // the next segment's overlap, cut from this piece's end
	if p.spec.Live || i+1 < p.Count() {
		next = p.spec.Overlap
	}
	return s.FirstFrame, s.Frames - s.Trim - next, nil
}

// LongestPiece is the frame count of the longest piece the plan can ever
// produce (see Piece): a live playlist's target duration, fixed for the
// playlist's whole life, derives from it. Only the first, second and last
// two segments can differ from the rest, so it costs O(1).
func (p *Plan) LongestPiece() int {
	idx := []int64{0, 1}
	if !p.spec.Live {
		n := p.Count()
		idx = []int64{0, 1, n - 2, n - 1}
	}
	longest := 0
	for _, i := range idx {
		if i < 0 || (!p.spec.Live && i >= p.Count()) {
			continue
		}
		if _, f, err := p.Piece(i); err == nil {
			longest = max(longest, f)
		}
	}
	return longest
}
