package hls

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("hls: malformed playlist")

// Parse reads a media playlist as String writes it (and as any RFC 8216
// media playlist of fMP4 segments reads): the tags Playlist models; other
// tags are ignored. A playlist without #EXTM3U, EXT-X-TARGETDURATION or
// with an EXTINF not followed by its URI is an error wrapping ErrMalformed.
func Parse(text string) (Playlist, error) {
	var p Playlist
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "#EXTM3U" {
		return Playlist{}, fmt.Errorf("%w: no #EXTM3U first line", ErrMalformed)
	}
	target := false
	var pending *float64
	for n, raw := range lines[1:] {
		line := strings.TrimSpace(raw)
		tag, value, _ := strings.Cut(line, ":")
		bad := func(err error) error { return fmt.Errorf("%w: line %d %q: %w", ErrMalformed, n+2, line, err) }
		switch {
		case line == "":
		case tag == "#EXT-X-TARGETDURATION":
			v, err := strconv.Atoi(value)
			if err != nil {
				return Playlist{}, bad(err)
			}
			p.TargetDuration, target = v, true
		case tag == "#EXT-X-MEDIA-SEQUENCE":
			v, err := strconv.Atoi(value)
			if err != nil {
				return Playlist{}, bad(err)
			}
			p.MediaSequence = v
		case tag == "#EXT-X-PLAYLIST-TYPE":
			p.Event = value == "EVENT"
		case tag == "#EXT-X-MAP":
			uri, ok := strings.CutPrefix(value, "URI=")
			if !ok {
				return Playlist{}, bad(errors.New("no URI attribute"))
			}
			uri, _, _ = strings.Cut(uri, ",")
			p.Map = strings.Trim(uri, `"`)
		case tag == "#EXTINF":
			d, _, _ := strings.Cut(value, ",")
			v, err := strconv.ParseFloat(d, 64)
			if err != nil {
				return Playlist{}, bad(err)
			}
			pending = &v
		case line == "#EXT-X-ENDLIST":
			p.End = true
		case strings.HasPrefix(line, "#"):
		default:
			if pending == nil {
				return Playlist{}, bad(errors.New("a URI without #EXTINF"))
			}
			p.Segments = append(p.Segments, Segment{URI: line, Duration: *pending})
			pending = nil
		}
	}
	switch {
	case !target:
		return Playlist{}, fmt.Errorf("%w: no #EXT-X-TARGETDURATION", ErrMalformed)
	case pending != nil:
		return Playlist{}, fmt.Errorf("%w: the last #EXTINF has no URI", ErrMalformed)
	}
	return p, nil
}
