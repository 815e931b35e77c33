package stitcher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/media"
)

// audio is a job's sound: the one AAC encode of its audio upload, which
// the outputs carry by stream copy, piece by piece. Only the manifest is
// held; each piece reads its own packets and their slice of the index.
type audio struct {
	track          media.AACTrack
	packets, index blob.Key
	trackID        uint32 // in the outputs' init segment
}

// openAudio reads the manifest at key (a job's AudioKey, an audio intake's
// AudioManifestName) and locates its packets and index, the objects of
// the same folder.
func (s *Stitcher) openAudio(ctx context.Context, key string) (*audio, error) {
	k, err := blob.ParseUploadDerivedKey(key)
	if err != nil {
		return nil, fmt.Errorf("stitcher: audio key: %w", err)
	}
	folder, ok := strings.CutSuffix(string(k), "/"+media.AudioManifestName)
	if !ok {
		return nil, fmt.Errorf("stitcher: audio key %q does not name a manifest, %s", key, media.AudioManifestName)
	}
	a := &audio{}
	if a.packets, err = blob.ParseUploadDerivedKey(folder + "/" + media.AACName); err != nil {
		return nil, fmt.Errorf("stitcher: audio packets: %w", err)
	}
	if a.index, err = blob.ParseUploadDerivedKey(folder + "/" + media.AACIndexName); err != nil {
		return nil, fmt.Errorf("stitcher: audio index: %w", err)
	}
	data, err := s.get(ctx, k)
	if err != nil {
		return nil, err
	}
	var m media.AudioManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("stitcher: audio manifest %s: %w", k, err)
	}
	a.track = m.Track
	return a, nil
}

// setInit records segment 0's video init segment, which every segment's
// must equal, and the init the outputs start with: the same, or with the
// job's audio track muxed in.
func (j *job) setInit(video []byte) error {
	if j.audio == nil {
		j.init, j.out = video, video
		return nil
	}
	out, err := media.MuxInit(video, j.audio.track)
	if err != nil {
		return fmt.Errorf("stitcher: %s: %w", j.job.ID, err)
	}
	id, err := media.AudioTrackID(out)
	if err != nil {
		return fmt.Errorf("stitcher: %s: %w", j.job.ID, err)
	}
	j.init, j.out, j.audio.trackID = video, out, id
	return nil
}

// resumeInit restores what setInit recorded when the outputs' init, out,
// was written before: read back as it is, and for a job with sound the
// video init taken again from segment 0.
func (j *job) resumeInit(ctx context.Context, out []byte) error {
	if j.audio == nil {
		j.init, j.out = out, out
		return nil
	}
	seg, err := j.s.store.GetSegment(ctx, j.job.ID, 0)
	if err != nil {
		return err
	}
	data, err := j.s.get(ctx, blob.Key(seg.VideoKey))
	if err != nil {
		return err
	}
	video, _, err := media.Fragments(data)
	if err != nil {
		return fmt.Errorf("stitcher: %s: segment 0: %w", j.job.ID, err)
	}
	if j.audio.trackID, err = media.AudioTrackID(out); err != nil {
		return fmt.Errorf("stitcher: %s: the preview's init: %w", j.job.ID, err)
	}
	j.init, j.out = video, out
	return nil
}

// pieceAudio is the audio fragment, sequence number seq, of the piece of
// frames [a, b) (the first piece's from frame 0): nil for a silent job or
// a piece that carries no packet.
func (j *job) pieceAudio(ctx context.Context, first bool, a, b int64, seq int) ([]byte, error) {
	if j.audio == nil {
		return nil, nil
	}
	at := func(k blob.Key) objectAt { return objectAt{ctx: ctx, s: j.s.blob, key: k} }
	f, err := media.PieceAudio(j.audio.track, j.audio.trackID, uint32(seq), first, a, b, j.job.FPS, at(j.audio.index), at(j.audio.packets))
	if err != nil {
		return nil, fmt.Errorf("stitcher: %s: audio of frames [%d, %d): %w", j.job.ID, a, b, err)
	}
	return f, nil
}

// objectAt reads an object by ranged GETs, as an io.ReaderAt for one call.
type objectAt struct {
	ctx context.Context
	s   *blob.Store
	key blob.Key
}

func (o objectAt) ReadAt(p []byte, off int64) (int, error) {
	b, err := o.s.ReadRange(o.ctx, o.key, off, int64(len(p)))
	return copy(p, b), err
}
