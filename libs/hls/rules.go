package hls

import (
	"errors"
	"fmt"
	"math"
)

// ErrRule is wrapped by every rule a playlist breaks.
var ErrRule = errors.New("hls: playlist rule broken")

// Check checks one version of a media playlist on its own: it has an
// EXT-X-MAP, a target duration ≥ 1 that every segment's duration, rounded
// to the nearest integer, does not exceed (RFC 8216 §4.3.3.1), segments of
// positive duration, and, when segments have left a live playlist that has
// not ended, at least three target durations of segments (§6.2.2).
func Check(p Playlist) error {
	var errs broken
	bad := errs.add
	if p.Map == "" {
		bad("no EXT-X-MAP")
	}
	if p.TargetDuration < 1 {
		bad("EXT-X-TARGETDURATION %d: want ≥ 1", p.TargetDuration)
	}
	total := 0.0
	for i, s := range p.Segments {
		if !(s.Duration > 0) {
			bad("segment %d (%s): EXTINF %v: want > 0", p.MediaSequence+i, s.URI, s.Duration)
		}
		if r := int(math.Round(s.Duration)); r > p.TargetDuration {
			bad("segment %d (%s): EXTINF %.6f rounds to %d, above EXT-X-TARGETDURATION %d", p.MediaSequence+i, s.URI, s.Duration, r, p.TargetDuration)
		}
		total += s.Duration
	}
	if !p.Event && !p.End && p.MediaSequence > 0 && total < float64(3*p.TargetDuration)-1e-6 {
		bad("segments were removed down to %.3f s, below three target durations (%d s)", total, 3*p.TargetDuration)
	}
	return errors.Join(errs...)
}

// broken collects the rules a playlist breaks.
type broken []error

// add records a broken rule, wrapping ErrRule.
func (b *broken) add(format string, a ...any) {
	*b = append(*b, fmt.Errorf("%w: "+format, append([]any{ErrRule}, a...)...))
}

// Watcher checks the successive versions of one playlist, as a player that
// polls it sees them, against the rules a player relies on (RFC 8216 §6.2.1,
// §6.2.2, §6.3.4). Every version must pass Check, and from one version to
// the next:
//
//   - EXT-X-TARGETDURATION, the playlist type and EXT-X-MAP never change;
//   - EXT-X-MEDIA-SEQUENCE never decreases, and segments only advance: the
//     segment with sequence number n (MEDIA-SEQUENCE + its position) keeps
//     its URI and duration in every version that lists it, segments leave
//     only from the front, and none is taken from the end;
//   - an EVENT playlist never removes a segment;
//   - once a version has EXT-X-ENDLIST, the playlist never changes again.
//
// The zero Watcher is ready. It remembers every segment it saw, by sequence
// number, for Complete.
type Watcher struct {
	prev     *Playlist
	seen     map[int]Segment
	versions int
}

// Next checks version p after the ones seen so far; the error names every
// rule p breaks.
func (w *Watcher) Next(p Playlist) error {
	var errs broken
	if err := Check(p); err != nil {
		errs = append(errs, err)
	}
	bad := errs.add
	if w.seen == nil {
		w.seen = map[int]Segment{}
	}
	for i, s := range p.Segments {
		n := p.MediaSequence + i
		if old, ok := w.seen[n]; ok && old != s {
			bad("segment %d was %s of %.6f s, is now %s of %.6f s", n, old.URI, old.Duration, s.URI, s.Duration)
		}
		w.seen[n] = s
	}
	if q := w.prev; q != nil {
		switch {
		case p.TargetDuration != q.TargetDuration:
			bad("EXT-X-TARGETDURATION changed from %d to %d", q.TargetDuration, p.TargetDuration)
		case p.Event != q.Event:
			bad("the playlist type changed (EVENT %v, then %v)", q.Event, p.Event)
		case p.Map != q.Map:
			bad("EXT-X-MAP changed from %q to %q", q.Map, p.Map)
		}
		if p.MediaSequence < q.MediaSequence {
			bad("EXT-X-MEDIA-SEQUENCE went back from %d to %d", q.MediaSequence, p.MediaSequence)
		}
		if last, prevLast := p.MediaSequence+len(p.Segments), q.MediaSequence+len(q.Segments); last < prevLast {
			bad("segments were taken from the end: the last sequence went back from %d to %d", prevLast-1, last-1)
		}
		if p.Event && p.MediaSequence != q.MediaSequence {
			bad("an EVENT playlist removed segments (EXT-X-MEDIA-SEQUENCE %d, then %d)", q.MediaSequence, p.MediaSequence)
		}
		if q.End && p.String() != q.String() {
			bad("the playlist changed after EXT-X-ENDLIST")
		}
	}
	w.prev = &p
	w.versions++
	return errors.Join(errs...)
}

// Versions is how many versions Next has seen.
func (w *Watcher) Versions() int { return w.versions }

// Last is the last version seen; false before the first.
func (w *Watcher) Last() (Playlist, bool) {
	if w.prev == nil {
		return Playlist{}, false
	}
	return *w.prev, true
}

// Complete checks the playlist's end: the last version seen has
// EXT-X-ENDLIST, the versions seen listed every segment from sequence 0 to
// its last (a player that watched from the start saw them all), and their
// durations add up to frames at fps, within a microsecond per segment (the
// precision of EXTINF as written).
func (w *Watcher) Complete(frames int64, fps int) error {
	p, ok := w.Last()
	if !ok {
		return fmt.Errorf("%w: no version seen", ErrRule)
	}
	var errs broken
	bad := errs.add
	if !p.End {
		bad("the last version has no EXT-X-ENDLIST")
	}
	last := p.MediaSequence + len(p.Segments)
	total, listed := 0.0, 0
	for n, s := range w.seen {
		if n >= 0 && n < last {
			total += s.Duration
			listed++
		}
	}
	if listed < last { // name the first few: a sequence may start far from 0
		var missing []int
		for n := 0; n < last && len(missing) < 10; n++ {
			if _, ok := w.seen[n]; !ok {
				missing = append(missing, n)
			}
		}
		bad("segments %v were never listed (%d in all)", missing, last-listed)
	}
	if want := float64(frames) / float64(fps); math.Abs(total-want) > 1e-6*float64(max(last, 1)) {
		bad("the segments last %.6f s in all, the video %d frames at %d fps = %.6f s", total, frames, fps, want)
	}
	return errors.Join(errs...)
}
