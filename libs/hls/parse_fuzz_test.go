package hls_test

import (
	"errors"
	"testing"

	"github.com/spoolvideo/spool/libs/hls"
)

// FuzzParse: no text makes Parse panic or hang; what it refuses wraps
// ErrMalformed; what it accepts is written back (String) as a playlist
// that parses to the same one, and the rules' checks (Check, a Watcher)
// take it without panicking.
func FuzzParse(f *testing.F) {
	// Playlists as the stitcher writes them: a live window, an event
	// playlist that ended, an extension's kept input before segment 0.
	f.Add(live(6, 0, 3, 5.041667, 3.5, false).String())
	f.Add(live(6, 4, 10, 5.041667, 3.5, true).String())
	f.Add(hls.Playlist{TargetDuration: 2, Event: true, Map: "init.mp4", End: true,
		Segments: []hls.Segment{{URI: "in0.m4s", Duration: 1}, {URI: "in1.m4s", Duration: 0.5}, {URI: "0.m4s", Duration: 1.5}}}.String())
	f.Add("#EXTM3U\r\n#EXT-X-VERSION:7\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\r\n#EXTINF:3.9,title\r\nseg.m4s\r\n")
	f.Add("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"a,b.mp4\"\n#EXTINF:NaN,\nx\n#EXTINF:0x1p-2,\ny\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := hls.Parse(text)
		if err != nil {
			if !errors.Is(err, hls.ErrMalformed) {
				t.Fatalf("refused without ErrMalformed: %v", err)
			}
			return
		}
		_ = hls.Check(p)
		var w hls.Watcher
		_ = w.Next(p)
		_ = w.Next(p)
		_ = w.Complete(int64(len(p.Segments)), 24)
		written := p.String()
		q, err := hls.Parse(written)
		if err != nil {
			t.Fatalf("the playlist written from %q does not parse: %v\n%s", text, err, written)
		}
		if q.String() != written || q.Map != p.Map || len(q.Segments) != len(p.Segments) {
			t.Fatalf("written and parsed again, %q becomes\n%s\nthen\n%s", text, written, q.String())
		}
		for i, s := range q.Segments {
			if s.URI != p.Segments[i].URI {
				t.Fatalf("segment %d: URI %q, then %q", i, p.Segments[i].URI, s.URI)
			}
		}
	})
}
