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
			uri, err := attribute(value, "URI")
			if err != nil {
				return Playlist{}, bad(err)
			}
			p.Map = uri
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

// attribute is the value of the attribute name in an attribute list
// (RFC 8216 §4.2: name=value pairs separated by commas): a quoted string
// without its quotes (it may hold commas), or a value up to the next
// comma; neither holds a quote, CR or LF.
func attribute(list, name string) (string, error) {
	for rest := list; rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		var value string
		if v, quoted := strings.CutPrefix(after, `"`); quoted {
			end := strings.IndexByte(v, '"')
			switch {
			case end < 0:
				return "", fmt.Errorf("attribute %s: a quoted string without its closing quote", key)
			case strings.ContainsAny(v[:end], "\r\n"):
				return "", fmt.Errorf("attribute %s: a quoted string holding a CR or LF", key)
			case end+1 < len(v) && v[end+1] != ',':
				return "", fmt.Errorf("attribute %s: %q after its quoted string", key, v[end+1:])
			}
			value, rest = v[:end], strings.TrimPrefix(v[end+1:], ",")
		} else {
			value, rest, _ = strings.Cut(after, ",")
			if strings.ContainsAny(value, "\"\r\n") {
				return "", fmt.Errorf("attribute %s: an unquoted value holding a quote, CR or LF", key)
			}
		}
		if key == name {
			return value, nil
		}
	}
	return "", fmt.Errorf("no %s attribute", name)
}
