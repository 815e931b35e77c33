package stitcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"go.opentelemetry.io/otel/trace"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
	"github.com/spoolvideo/spool/libs/telemetry"
)

// job is one open job's stitch: the durable cursor from Postgres plus what
// lives only here, the bytes appended since the last uploaded part. All of
// it can be rebuilt from Postgres and the pieces in MinIO (resume).
type job struct {
	s        *Stitcher
	job      store.Job
	st       store.Stitch // the durable part of the cursor
	finalKey blob.Key

	appended int   // segments appended to the preview
	seq      int   // the next fragment's sequence number
	frames   int64 // frames appended, buffered ones included
	bytes    int64 // bytes appended, buffered ones included
	buf      bytes.Buffer
	hash     hash.Hash // SHA-256 of every byte appended, in order
	init     []byte    // segment 0's init segment, which every segment's must equal
	out      []byte    // the init segment the outputs start with: init, with the audio track when there is one
	audio    *audio    // the job's sound; nil for a silent job
	pieces   []store.Piece
	prevTail []byte // independent mode: the last segment's trailing overlap fragment
}

// open loads the stitch of job jb, creating its multipart upload the first time,
// and rebuilds the part it was filling from the pieces past the last part.
func (s *Stitcher) open(ctx context.Context, jb store.Job) (*job, error) {
	id := jb.ID
	key, err := blob.Final(id)
	if err != nil {
		return nil, err
	}
	st, err := s.store.OpenStitch(ctx, id, s.cfg.ID, s.cfg.Lease, func() (string, error) {
		return s.blob.NewMultipart(ctx, key, blob.PutOptions{ContentType: "video/mp4"})
	})
	if err != nil {
		return nil, err
	}
	j := &job{s: s, job: jb, st: st, finalKey: key, appended: st.NextIndex, seq: st.NextSeq, frames: st.Frames,
		bytes: st.Bytes, hash: sha256.New()}
	if st.SHAState != nil {
		if err := j.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.SHAState); err != nil {
			return nil, fmt.Errorf("stitcher: %s: hash state: %w", id, err)
		}
	}
	if j.pieces, err = s.store.ListPieces(ctx, id, 0); err != nil {
		return nil, err
	}
	if st.Finalized {
		j.appended = st.Appended
		return j, nil
	}
	if jb.AudioKey != "" {
		if j.audio, err = s.openAudio(ctx, jb.AudioKey); err != nil {
			return nil, err
		}
	}
	if st.Appended > 0 {
		out, err := s.get(ctx, mustKey(blob.HLSInit(id)))
		if err != nil {
			return nil, err
		}
		if err := j.resumeInit(ctx, out); err != nil {
			return nil, err
		}
	}
	// Rebuild the buffer: the pieces past the last part, init first when no
	// part holds it yet. They are the bytes appended before, byte for byte.
	rebuilt := j.pieces[:0:0]
	for _, p := range j.pieces {
		if p.Index < st.NextIndex {
			rebuilt = append(rebuilt, p)
			continue
		}
		if p.Index != j.appended {
			break // a gap cannot happen; stop at it rather than guess
		}
		data, err := s.get(ctx, mustKey(blob.HLSSegment(id, uint32(p.Index))))
		if err != nil {
			return nil, err
		}
		if p.Index == 0 {
			j.write(j.out)
			if j.job.InputFrames > 0 {
				_, input, n, err := j.input(ctx, false)
				if err != nil {
					return nil, err
				}
				j.write(input)
				j.seq, j.frames = j.seq+n, j.frames+j.job.InputFrames
			}
		}
		j.write(data)
		j.appended, j.seq, j.frames = p.Index+1, j.seq+p.Fragments, j.frames+int64(p.Frames)
		rebuilt = append(rebuilt, p)
	}
	j.pieces = rebuilt
	return j, nil
}

// smallBuffer is how far a part buffer grows by doubling: past it, it
// grows at once to a whole part and a piece past it (write).
const smallBuffer = 1 << 20

// write appends p to the part buffer and the hash. The buffer holds what
// the job has appended since its last part, no more: a job of a few small
// pieces holds those, so many open jobs cost little. When it needs more
// than smallBuffer, it grows at once to a part and a piece past it, so that
// it never doubles past a part.
func (j *job) write(p []byte) {
	if need := j.buf.Len() + len(p); need > j.buf.Cap() && need > smallBuffer {
		j.buf.Grow(max(int(j.s.cfg.PartSize)+2<<20, need) - j.buf.Len())
	}
	j.buf.Write(p)
	j.hash.Write(p)
	j.bytes += int64(len(p))
}

// advance appends every committed segment that is next in order, uploads a
// part whenever the buffer holds PartSize bytes, and finalizes the job
// after its last segment.
func (j *job) advance(ctx context.Context) error {
	for {
		if j.st.Finalized {
			return nil
		}
		if !j.job.Live && j.appended == j.job.SegmentsTotal {
			return j.finalize(ctx)
		}
		seg, err := j.s.store.GetSegment(ctx, j.job.ID, j.appended)
		if err != nil && !errors.Is(err, store.ErrNotFound) { // not found: a live job's segment not planned yet
			return err
		}
		if err != nil || seg.State != store.SegDone {
			if j.job.Live && j.job.State == store.JobCancelled && j.appended > 0 {
				return j.finalize(ctx) // a stopped live job keeps every frame made so far
			}
			return nil
		}
		if err := j.append(ctx, seg); err != nil {
			return err
		}
	}
}

// append adds one committed segment: its piece goes to the preview (object,
// then Postgres, then the playlist) and into the part buffer.
func (j *job) append(ctx context.Context, seg store.Segment) (err error) {
	ctx, span := tracer.Start(ctx, "stitch.append", trace.WithAttributes(telemetry.AttrJob.String(j.job.ID),
		telemetry.AttrSegment.Int(seg.Index)))
	defer func() { endSpan(span, err) }()
	// Segment 0 of an extension follows its kept input: the input's
	// fragments go first, numbered from 1, and the piece's after them.
	var input, inputInit []byte
	var inputFrags int
	if seg.Index == 0 && j.job.InputFrames > 0 {
		if inputInit, input, inputFrags, err = j.input(ctx, true); err != nil {
			return err
		}
	}
	j.seq += inputFrags
	p, data, err := j.piece(ctx, seg)
	if err == nil && input != nil && !bytes.Equal(inputInit, j.init) {
		err = fmt.Errorf("stitcher: the input video of %s was encoded with another codec configuration than its segments", j.job.ID)
	}
	if err != nil {
		j.seq -= inputFrags
		return err
	}
	id := j.job.ID
	if seg.Index == 0 {
		if _, err := j.s.blob.Put(ctx, mustKey(blob.HLSInit(id)), bytes.NewReader(j.out), int64(len(j.out)),
			blob.PutOptions{ContentType: "video/mp4"}); err != nil {
			return err
		}
	}
	if _, err := j.s.blob.Put(ctx, mustKey(blob.HLSSegment(id, uint32(seg.Index))), bytes.NewReader(data), int64(len(data)),
		blob.PutOptions{ContentType: "video/iso.segment"}); err != nil {
		return err
	}
	if err := j.s.store.AddPiece(ctx, id, j.s.cfg.ID, p); err != nil {
		return err
	}
	if seg.Index == 0 {
		j.write(j.out)
		j.write(input)
		j.frames += j.job.InputFrames
	}
	j.write(data)
	j.appended, j.seq, j.frames = seg.Index+1, j.seq+p.Fragments, j.frames+int64(p.Frames)
	j.pieces = append(j.pieces, p)
	if err := j.s.writePlaylist(ctx, j.job, j.pieces, false); err != nil {
		return err
	}
	j.s.metrics.appended(ctx, len(data), seg.UpdatedAt)
	if int64(j.buf.Len()) >= j.s.cfg.PartSize {
		return j.uploadPart(ctx)
	}
	return nil
}

// uploadPart uploads the buffer as the next part and records what the
// parts now hold.
func (j *job) uploadPart(ctx context.Context) error {
	n := len(j.st.Parts) + 1
	part, err := j.s.blob.UploadPart(ctx, j.finalKey, j.st.UploadID, n, bytes.NewReader(j.buf.Bytes()), int64(j.buf.Len()))
	if err != nil {
		return err
	}
	state, err := j.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("stitcher: hash state: %w", err)
	}
	next := j.st
	next.Parts = append(append([]store.StitchPart(nil), j.st.Parts...), store.StitchPart{Number: part.Number, ETag: part.ETag, Size: part.Size})
	next.NextIndex, next.NextSeq, next.Frames, next.Bytes, next.SHAState = j.appended, j.seq, j.frames, j.bytes, state
	if err := j.s.store.SavePart(ctx, j.s.cfg.ID, next); err != nil {
		return err
	}
	j.st = next
	j.buf.Reset()
	return nil
}

// finalize uploads the last part, completes the upload, checks the frame
// count against the plan, records the final artifact with the job's
// success and publishes the event.
func (j *job) finalize(ctx context.Context) (err error) {
	id := j.job.ID
	ctx, span := tracer.Start(ctx, "stitch.finalize", trace.WithAttributes(telemetry.AttrJob.String(id)))
	defer func() { endSpan(span, err) }()
	if !j.job.Live && j.frames != j.job.TotalFrames {
		return fmt.Errorf("%w: job %s: %d frames stitched, the plan has %d", errFrameMismatch, id, j.frames, j.job.TotalFrames)
	}
	if j.buf.Len() > 0 || len(j.st.Parts) == 0 {
		if err := j.uploadPart(ctx); err != nil {
			return err
		}
	}
	parts := make([]blob.Part, len(j.st.Parts))
	for i, p := range j.st.Parts {
		parts[i] = blob.Part{Number: p.Number, ETag: p.ETag, Size: p.Size}
	}
	if _, err := j.s.blob.CompleteMultipart(ctx, j.finalKey, j.st.UploadID, parts); err != nil {
		// Completed before a crash: the upload is gone and the object whole.
		info, serr := j.s.blob.Stat(ctx, j.finalKey)
		if !errors.Is(err, blob.ErrNotFound) || serr != nil || info.Size != j.bytes {
			return err
		}
	}
	sum := hex.EncodeToString(j.hash.Sum(nil))
	if err := j.s.finishJob(ctx, j.job, store.Final{Key: string(j.finalKey), SHA256: sum, Bytes: j.bytes, Frames: j.frames,
		Segments: j.appended}); err != nil {
		return err
	}
	if err := j.s.store.MarkFinalized(ctx, id); err != nil {
		return err
	}
	j.st.Finalized = true
	return j.s.writePlaylist(ctx, j.job, j.pieces, true)
}

// get reads a whole object.
func (s *Stitcher) get(ctx context.Context, key blob.Key) ([]byte, error) {
	r, _, err := s.blob.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("stitcher: read %s: %w", key, err)
	}
	return data, nil
}

// mustKey unwraps a key built from a job id that the store already holds,
// so valid.
func mustKey(k blob.Key, err error) blob.Key {
	if err != nil {
		panic(err)
	}
	return k
}
