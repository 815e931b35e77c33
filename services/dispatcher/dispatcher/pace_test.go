package dispatcher

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// TestPaceReleaseAt: a live segment goes out when its first new frame is
// within live_ahead_s of the live edge; a bounded job's at once.
func TestPaceReleaseAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	live := pace{live: true, fps: 24, ahead: 30 * time.Second, start: start}
	tpl := func(first int64, overlap uint64) []byte {
		b, _ := proto.Marshal(&spoolv1.SegmentTask{FirstFrame: first, Overlap: uint32(overlap)})
		return b
	}
	cases := []struct {
		name string
		p    pace
		tpl  []byte
		now  time.Time
		want time.Time
	}{
		{"bounded: at once", pace{}, tpl(2400-37, 37), start, time.Time{}},
		{"segment 0: at once", live, tpl(0, 0), start, time.Time{}},
		{"within the lead: at once", live, tpl(24*30-37, 37), start, time.Time{}},
		{"a second past the lead", live, tpl(24*31-37, 37), start, start.Add(time.Second)},
		{"an hour in", live, tpl(24*3600-37, 37), start.Add(10 * time.Minute), start.Add(time.Hour - 30*time.Second)},
		{"an hour in, and the clock is there", live, tpl(24*3600-37, 37), start.Add(time.Hour), time.Time{}},
		{"fractional seconds", pace{live: true, fps: 24, ahead: time.Second, start: start}, tpl(90-3, 3), start,
			start.Add(2750 * time.Millisecond)},
		{"undecodable template: at once", live, []byte{0xff}, start, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.notBefore(c.tpl, c.now); !got.Equal(c.want) {
				t.Fatalf("not before %v, want %v", got, c.want)
			}
		})
	}
}
