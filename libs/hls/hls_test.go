package hls_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/hls"
)

// live builds a sliding-window version listing segments [from, to) of
// duration d each (segment 0 lasting first).
func live(target, from, to int, first, d float64, end bool) hls.Playlist {
	p := hls.Playlist{TargetDuration: target, MediaSequence: from, Map: "init.mp4", End: end}
	for n := from; n < to; n++ {
		dur := d
		if n == 0 {
			dur = first
		}
		p.Segments = append(p.Segments, hls.Segment{URI: strconv.Itoa(n) + ".m4s", Duration: dur})
	}
	return p
}

func TestParseRoundTrip(t *testing.T) {
	for _, p := range []hls.Playlist{
		live(6, 0, 3, 5.041667, 3.5, false),
		live(6, 4, 10, 5.041667, 3.5, true),
		{TargetDuration: 2, Event: true, Map: "init.mp4", Segments: []hls.Segment{{URI: "0.m4s", Duration: 1.5}}, End: true},
	} {
		got, err := hls.Parse(p.String())
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != p.String() {
			t.Fatalf("parsed\n%s\nwritten\n%s", got, p)
		}
	}
	// EXT-X-MAP's URI is a quoted string, which may hold a comma, or a
	// value up to the next attribute.
	for text, want := range map[string]string{
		`URI="init.mp4"`: "init.mp4", `URI="a,b.mp4",BYTERANGE="720@0"`: "a,b.mp4", `BYTERANGE="1,2",URI="x"`: "x", `URI=init.mp4,X=1`: "init.mp4",
	} {
		p, err := hls.Parse("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:" + text + "\n")
		if err != nil || p.Map != want {
			t.Errorf("EXT-X-MAP:%s: %q %v, want %q", text, p.Map, err, want)
		}
	}
	for _, bad := range []string{"", "#EXT-X-VERSION:7\n", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"a\n",
		"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=a\"b\n", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"a\"b\n",
		"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:BYTERANGE=1\n", "#EXTM3U\n#EXTINF:1,\n0.m4s\n", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n",
		"#EXTM3U\n#EXT-X-TARGETDURATION:x\n", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n0.m4s\n"} {
		if _, err := hls.Parse(bad); !errors.Is(err, hls.ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestTargetFor(t *testing.T) {
	for _, c := range []struct{ frames, fps, want int }{{121, 24, 6}, {120, 24, 5}, {1, 24, 1}, {0, 24, 1}, {9, 24, 1}, {25, 24, 2}, {5, 0, 1}} {
		if got := hls.TargetFor(c.frames, c.fps); got != c.want {
			t.Errorf("TargetFor(%d, %d) = %d, want %d", c.frames, c.fps, got, c.want)
		}
	}
}

// TestWatcher: a playlist that grows by the rules passes; each broken rule
// is named.
func TestWatcher(t *testing.T) {
	good := []hls.Playlist{
		live(6, 0, 1, 5.041667, 3.5, false),
		live(6, 0, 5, 5.041667, 3.5, false),
		live(6, 1, 7, 5.041667, 3.5, false),
		live(6, 3, 9, 5.041667, 3.5, false),
		live(6, 3, 9, 5.041667, 3.5, true),
	}
	cases := []struct {
		name     string
		versions []hls.Playlist
		want     string // in the error of the last version; "" for none
	}{
		{"grows by the rules", good, ""},
		{"target drops once the first segment slides out", []hls.Playlist{live(6, 0, 6, 5.5, 3.5, false), live(4, 1, 7, 5.5, 3.5, false)}, "TARGETDURATION changed from 6 to 4"},
		{"segment longer than the target", []hls.Playlist{live(4, 0, 2, 5.5, 3.5, false)}, "rounds to 6, above EXT-X-TARGETDURATION 4"},
		{"no map", []hls.Playlist{{TargetDuration: 1, Segments: []hls.Segment{{URI: "0.m4s", Duration: 1}}}}, "no EXT-X-MAP"},
		{"media sequence goes back", []hls.Playlist{good[3], live(6, 0, 9, 5.041667, 3.5, true)}, "MEDIA-SEQUENCE went back from 3 to 0"},
		{"a segment changes", []hls.Playlist{good[1], live(6, 0, 5, 5.041667, 3.4, false)}, "segment 1 was 1.m4s of 3.500000 s, is now 1.m4s of 3.400000 s"},
		{"taken from the end", []hls.Playlist{good[1], live(6, 0, 4, 5.041667, 3.5, false)}, "taken from the end"},
		{"changed after the end", []hls.Playlist{good[4], live(6, 3, 10, 5.041667, 3.5, true)}, "changed after EXT-X-ENDLIST"},
		{"window too short", []hls.Playlist{live(6, 0, 4, 5.041667, 3.5, false), live(6, 2, 5, 5.041667, 3.5, false)}, "below three target durations"},
		{"event playlist removes", []hls.Playlist{{TargetDuration: 2, Event: true, Map: "i", Segments: []hls.Segment{{"0.m4s", 1}, {"1.m4s", 1}}},
			{TargetDuration: 2, Event: true, Map: "i", MediaSequence: 1, Segments: []hls.Segment{{"1.m4s", 1}}}}, "EVENT playlist removed segments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w hls.Watcher
			var err error
			for i, v := range c.versions {
				if err = w.Next(v); err != nil && i < len(c.versions)-1 {
					t.Fatalf("version %d: %v", i, err)
				}
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, hls.ErrRule)):
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestComplete(t *testing.T) {
	// 121 frames, then 84 per segment, at 24 fps: 9 segments hold 793 frames.
	first, d := 121.0/24, 84.0/24
	var w hls.Watcher
	for _, v := range []hls.Playlist{live(6, 0, 5, first, d, false), live(6, 3, 9, first, d, true)} {
		if err := w.Next(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Complete(121+8*84, 24); err != nil {
		t.Fatal(err)
	}
	if err := w.Complete(121+8*84+1, 24); err == nil || !strings.Contains(err.Error(), "in all") {
		t.Fatalf("a frame too many: %v", err)
	}
	var gap hls.Watcher
	for _, v := range []hls.Playlist{live(6, 0, 4, first, d, false), live(6, 5, 9, first, d, false)} {
		_ = gap.Next(v)
	}
	if err := gap.Complete(121+8*84, 24); err == nil || !strings.Contains(err.Error(), "[4] were never listed") || !strings.Contains(err.Error(), "no EXT-X-ENDLIST") {
		t.Fatalf("a gap and no end: %v", err)
	}
}
