package hls

import (
	"fmt"
	"strings"
)

// Version is the playlist's EXT-X-VERSION: 7, for fMP4 segments with
// EXT-X-MAP.
const Version = 7

// Segment is one media segment of a playlist.
type Segment struct {
	URI string
	// Duration is the EXTINF, in seconds.
	Duration float64
}

// Playlist is a media playlist of fMP4 segments.
type Playlist struct {
	// TargetDuration is EXT-X-TARGETDURATION, in whole seconds: every
	// segment's duration, rounded to the nearest integer, is at most it,
	// and it never changes over the playlist's life (RFC 8216 §4.3.3.1,
	// §6.2.1).
	TargetDuration int
	// Event marks an EVENT playlist (EXT-X-PLAYLIST-TYPE:EVENT): segments
	// are only ever appended. Without it the playlist is a live sliding
	// window.
	Event bool
	// MediaSequence is EXT-X-MEDIA-SEQUENCE: the sequence number of the
	// first segment listed; segment i of Segments has MediaSequence+i.
	MediaSequence int
	// Map is the EXT-X-MAP URI of the initialisation section; it holds
	// no quote, CR or LF (it is written as a quoted string).
	Map string
	// Segments are the segments listed, in order.
	Segments []Segment
	// End is EXT-X-ENDLIST: no segment will be added.
	End bool
}

// TargetFor is the target duration of a playlist whose longest segment
// can ever have frames frames at fps: the duration rounded up, at least 1.
func TargetFor(frames, fps int) int {
	if fps < 1 {
		return 1
	}
	return max(1, (frames+fps-1)/fps)
}

// String writes the playlist. Durations are written with microsecond
// precision.
func (p Playlist) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n", Version, p.TargetDuration)
	if p.Event {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n", p.MediaSequence)
	if p.Map != "" { // a quoted string, as is: it never holds a quote
		fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", p.Map)
	}
	for _, s := range p.Segments {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%s\n", s.Duration, s.URI)
	}
	if p.End {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.String()
}
