package stitcher

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/spoolvideo/spool/libs/blob"
)

// writePlaylist writes jobs/<job>/hls/index.m3u8 for the pieces appended so
// far: an EVENT playlist of fMP4 media segments (one per piece) that any HLS
// player can watch while the job runs, closed by #EXT-X-ENDLIST when the
// job is final. A live job's playlist is a sliding window of its last
// LiveWindow pieces instead.
func (s *Stitcher) writePlaylist(ctx context.Context, j *job, final bool) error {
	key, err := blob.HLSPlaylist(j.job.ID)
	if err != nil {
		return err
	}
	data := playlist(j, final, s.cfg.LiveWindow)
	_, err = s.blob.Put(ctx, key, strings.NewReader(data), int64(len(data)),
		blob.PutOptions{ContentType: "application/vnd.apple.mpegurl", CacheControl: "no-cache"})
	return err
}

func playlist(j *job, final bool, window int) string {
	pieces := j.pieces
	if j.job.Live && !final && len(pieces) > window {
		pieces = pieces[len(pieces)-window:]
	}
	fps := float64(j.job.FPS)
	target := 1
	for _, p := range pieces {
		target = max(target, int(math.Ceil(float64(p.Frames)/fps)))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n", target)
	if !j.job.Live {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	seq := 0
	if len(pieces) > 0 {
		seq = pieces[0].Index
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n", seq)
	for _, p := range pieces {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n%d.m4s\n", float64(p.Frames)/fps, p.Index)
	}
	if final {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.String()
}
