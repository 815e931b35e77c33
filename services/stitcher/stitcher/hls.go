package stitcher

import (
	"context"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/hls"
	"github.com/spoolvideo/spool/libs/store"
)

// writePlaylist writes jobs/<job>/hls/index.m3u8 for the pieces appended so
// far: an EVENT playlist of fMP4 media segments (one per piece) that any HLS
// player can watch while the job runs, closed by #EXT-X-ENDLIST when the job
// ends (final). A live job's playlist is a sliding window instead (see
// liveWindow), closed where it stands when the job is stopped.
func (s *Stitcher) writePlaylist(ctx context.Context, jb store.Job, pieces []store.Piece, final bool) error {
	key, err := blob.HLSPlaylist(jb.ID)
	if err != nil {
		return err
	}
	data := playlist(jb, pieces, final, s.cfg.LiveWindow).String()
	_, err = s.blob.Put(ctx, key, strings.NewReader(data), int64(len(data)),
		blob.PutOptions{ContentType: "application/vnd.apple.mpegurl", CacheControl: "no-cache"})
	return err
}

// playlist is job jb's playlist of pieces, every piece appended so far in
// order. Its target duration comes from the plan's longest piece, so it
// never changes over the playlist's life (RFC 8216 §6.2.1), and each piece
// keeps its sequence number (its index), URI and duration.
func playlist(jb store.Job, pieces []store.Piece, final bool, window int) hls.Playlist {
	fps := max(jb.FPS, 1)
	longest := jb.LongestPiece
	if longest == 0 { // a job recorded before its plan's longest piece was
		for _, p := range pieces {
			longest = max(longest, p.Frames)
		}
	}
	target := hls.TargetFor(longest, fps)
	if jb.Live {
		pieces = liveWindow(pieces, window, target, fps)
	}
	pl := hls.Playlist{TargetDuration: target, Event: !jb.Live, Map: "init.mp4", End: final}
	if len(pieces) > 0 {
		pl.MediaSequence = pieces[0].Index
		if pieces[0].Index == 0 { // an extension's kept input comes first
			pl.Segments = inputSegments(jb, fps)
		}
	}
	for _, p := range pieces {
		pl.Segments = append(pl.Segments, hls.Segment{URI: strconv.Itoa(p.Index) + ".m4s", Duration: float64(p.Frames) / float64(fps)})
	}
	return pl
}

// liveWindow is the tail of pieces a live playlist lists: the last window
// pieces, and more while they last less than three target durations (a
// player starts three target durations from the end; RFC 8216 §6.2.2). As
// pieces are added its start only moves forward.
func liveWindow(pieces []store.Piece, window, target, fps int) []store.Piece {
	from, frames := len(pieces), 0
	for from > 0 && (len(pieces)-from < window || frames < 3*target*fps) {
		from--
		frames += pieces[from].Frames
	}
	return pieces[from:]
}
