package worker

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/plan"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// RangeReader reads exactly bytes [off, off+n) of an object: the worker's
// reads MinIO (blob.Store.ReadRange), the oracle's bytes in memory.
type RangeReader func(ctx context.Context, off, n int64) ([]byte, error)

// SegmentAudio is the audio a task's engine hears: the samples of its
// frames [first_frame, first_frame+frames), overlap included, which are
// [plan.SampleAt(first), plan.SampleAt(first+frames)) at the task's audio
// rate, read with one ranged read of exactly those within the track's
// AudioSamples (4 bytes each, float32 little-endian); samples before 0 or
// past the track's end are silence. nil for a task without audio.
func SegmentAudio(ctx context.Context, t *spoolv1.SegmentTask, read RangeReader) ([]float32, error) {
	if t.AudioKey == "" {
		return nil, nil
	}
	if t.AudioRate == 0 || t.Fps == 0 {
		return nil, fmt.Errorf("%w: audio %s at %d Hz for a task at %d fps", errPermanent, t.AudioKey, t.AudioRate, t.Fps)
	}
	lo, hi := plan.Samples(t.FirstFrame, t.FirstFrame+int64(t.Frames), int(t.Fps), int(t.AudioRate))
	out := make([]float32, hi-lo)
	from, to := max(lo, 0), min(hi, t.AudioSamples)
	if from >= to {
		return out, nil
	}
	raw, err := read(ctx, 4*from, 4*(to-from))
	if err != nil {
		return nil, fmt.Errorf("read audio samples [%d, %d) of %s: %w", from, to, t.AudioKey, err)
	}
	for i := range to - from {
		out[from-lo+i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// SegmentReference is the reference a task's engine animates: for each of
// its frames, the frame of the reference that the video's frame shows
// (plan.PingPong: a template video plays back and forth; an image is every
// frame), packed RGB24, frame after frame. A window of consecutive frames
// shows consecutive reference frames, so one ranged read of them does.
// nil for a task without a reference.
func SegmentReference(ctx context.Context, t *spoolv1.SegmentTask, read RangeReader) ([]byte, error) {
	if t.ReferenceKey == "" {
		return nil, nil
	}
	r := int(t.ReferenceFrames)
	if r < 1 {
		return nil, fmt.Errorf("%w: reference %s of %d frames", errPermanent, t.ReferenceKey, r)
	}
	size := int64(t.Width) * int64(t.Height) * 3
	pmin, pmax := int64(r), int64(-1)
	for i := range int64(t.Frames) {
		p := plan.PingPong(t.FirstFrame+i, r)
		pmin, pmax = min(pmin, p), max(pmax, p)
	}
	raw, err := read(ctx, pmin*size, (pmax-pmin+1)*size)
	if err != nil {
		return nil, fmt.Errorf("read reference frames [%d, %d] of %s: %w", pmin, pmax, t.ReferenceKey, err)
	}
	out := make([]byte, int64(t.Frames)*size)
	for i := range int64(t.Frames) {
		p := plan.PingPong(t.FirstFrame+i, r) - pmin
		copy(out[i*size:(i+1)*size], raw[p*size:(p+1)*size])
	}
	return out, nil
}

// sound reads a task's audio and reference from the store. The keys must
// be ones intake derived from an upload.
func (w *Worker) sound(ctx context.Context, task *spoolv1.SegmentTask) (audio []float32, ref []byte, err error) {
	ranged := func(field, key string) (RangeReader, error) {
		k, err := blob.ParseUploadDerivedKey(key)
		if err != nil {
			return nil, fmt.Errorf("%w: %s key: %w", errPermanent, field, err)
		}
		return func(ctx context.Context, off, n int64) (b []byte, err error) {
			defer touch(ctx)
			err = retryStore(ctx, w.cfg.StoreRetry, func(ctx context.Context) error {
				b, err = w.blob.ReadRange(ctx, k, off, n)
				return err
			})
			return b, err
		}, nil
	}
	if task.AudioKey != "" {
		read, err := ranged("audio", task.AudioKey)
		if err != nil {
			return nil, nil, err
		}
		if audio, err = SegmentAudio(ctx, task, read); err != nil {
			return nil, nil, err
		}
	}
	if task.ReferenceKey != "" {
		read, err := ranged("reference", task.ReferenceKey)
		if err != nil {
			return nil, nil, err
		}
		if ref, err = SegmentReference(ctx, task, read); err != nil {
			return nil, nil, err
		}
	}
	return audio, ref, nil
}
