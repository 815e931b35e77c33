package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/media"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// errPermanent marks a task that can never succeed (an invalid request).
var errPermanent = errors.New("permanent")

// sink is the engine's output path for one segment: it uploads the tail and
// publishes TAIL_READY the moment denoising ends, and feeds the kept frames
// to the encoder.
type sink struct {
	ctx      context.Context
	w        *Worker
	slot     *slot
	task     *spoolv1.SegmentTask
	enc      *media.Encoder
	start    time.Time
	denoised time.Time
	tailKey  string
	tailUp   time.Duration
	kept     int
	pack     []byte // packs rows when the engine's stride exceeds width × 3
}

func (s *sink) Step(int, int) error { return nil }

func (s *sink) Tail(state []byte) error {
	s.denoised = time.Now()
	key, err := blob.SegmentTail(s.task.JobId, s.task.Index, s.task.Attempt)
	if err != nil {
		return err
	}
	if _, err := s.w.blob.Put(s.ctx, key, bytes.NewReader(state), int64(len(state)), blob.PutOptions{ContentType: "application/octet-stream"}); err != nil {
		return fmt.Errorf("upload tail: %w", err)
	}
	s.tailKey, s.tailUp = string(key), time.Since(s.denoised)
	r := s.w.result(s.slot, s.task, spoolv1.Phase_PHASE_TAIL_READY)
	r.TailKey = s.tailKey
	r.Timings = &spoolv1.Timings{DenoiseMs: ms(s.denoised.Sub(s.start)), UploadMs: ms(s.tailUp)}
	if _, err := s.w.bus.PublishResult(s.ctx, r); err != nil {
		return fmt.Errorf("publish TAIL_READY: %w", err)
	}
	return nil
}

// Frame encodes the frames the video keeps. In chain mode the first
// `overlap` frames are dropped: they are the previous segment's last frames,
// reproduced exactly from its tail. In independent mode they are kept for
// the stitcher's crossfade. Frames generated only to meet the model's
// alignment (trim) are dropped at the end.
func (s *sink) Frame(f infer.Frame) error {
	t := s.task
	if t.Mode == spoolv1.Mode_MODE_CHAIN && f.Index < int(t.Overlap) {
		return nil
	}
	if f.Index >= int(t.Frames-t.TrimFrames) {
		return nil
	}
	rgb := f.RGB
	if row := f.Width * 3; f.Stride != row {
		if cap(s.pack) < row*f.Height {
			s.pack = make([]byte, row*f.Height)
		}
		s.pack = s.pack[:row*f.Height]
		for y := 0; y < f.Height; y++ {
			copy(s.pack[y*row:(y+1)*row], f.RGB[y*f.Stride:])
		}
		rgb = s.pack
	}
	s.kept++
	return s.enc.WriteFrame(rgb)
}

// runSegment generates one task's segment; the returned error says how the
// message must be settled.
func (w *Worker) runSegment(ctx context.Context, sl *slot, m jetstream.Msg, task *spoolv1.SegmentTask) error {
	var queued time.Duration
	if meta, err := m.Metadata(); err == nil {
		queued = time.Since(meta.Timestamp)
	}
	var cond []byte
	if task.ConditioningKey != "" {
		key, err := blob.ParseTailKey(task.JobId, task.ConditioningKey)
		if err != nil {
			return fmt.Errorf("%w: conditioning key: %w", errPermanent, err)
		}
		r, _, err := w.blob.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("download tail %s: %w", key, err)
		}
		cond, err = io.ReadAll(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("download tail %s: %w", key, err)
		}
	}
	var encoded bytes.Buffer
	enc, err := media.NewEncoder(ctx, &encoded, media.EncodeOptions{Width: int(task.Width), Height: int(task.Height),
		FPS: int(task.Fps), Codec: media.H264()})
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	s := &sink{ctx: ctx, w: w, slot: sl, task: task, enc: enc, start: time.Now()}
	req := infer.Request{Prompt: task.Prompt, Seed: task.Seed, Width: int(task.Width), Height: int(task.Height),
		Frames: int(task.Frames), Overlap: int(task.Overlap), Steps: int(task.Steps), Guidance: task.Guidance,
		FirstFrame: task.FirstFrame, Cond: cond, TailFrames: int(task.TailFrames)}
	if runErr := sl.engine.Run(ctx, req, s); runErr != nil {
		_ = enc.Close()
		if errors.Is(runErr, infer.ErrInvalidRequest) {
			return fmt.Errorf("%w: %w", errPermanent, runErr)
		}
		return runErr
	}
	decoded := time.Now()
	if err := enc.Close(); err != nil {
		return err
	}
	encodeDone := time.Now()
	newStart := int64(task.FirstFrame)
	if task.Mode == spoolv1.Mode_MODE_CHAIN {
		newStart += int64(task.Overlap)
	}
	c, err := media.Retime(encoded.Bytes(), int(task.Fps), newStart, task.Index+1)
	if err != nil {
		return err
	}
	key, err := blob.SegmentVideo(task.JobId, task.Index, task.Attempt, "mp4")
	if err != nil {
		return err
	}
	up := w.blob.NewWriter(ctx, key, blob.PutOptions{ContentType: "video/mp4"})
	for _, part := range [][]byte{c.Init, c.Media} {
		if _, err := up.Write(part); err != nil {
			up.Abort(err)
			return fmt.Errorf("upload fragment: %w", err)
		}
	}
	if err := up.Close(); err != nil {
		return fmt.Errorf("upload fragment: %w", err)
	}
	info := up.Info()
	denoised := s.denoised
	if denoised.IsZero() {
		denoised = decoded
	}
	r := w.result(sl, task, spoolv1.Phase_PHASE_DONE)
	r.TailKey, r.VideoKey, r.Sha256, r.Bytes, r.Frames = s.tailKey, string(key), info.SHA256, uint64(info.Size), uint32(c.Frames)
	r.Timings = &spoolv1.Timings{QueueMs: ms(queued), DenoiseMs: ms(denoised.Sub(s.start)),
		DecodeMs: ms(decoded.Sub(denoised) - s.tailUp), EncodeMs: ms(encodeDone.Sub(decoded)),
		UploadMs: ms(time.Since(encodeDone) + s.tailUp)}
	if _, err := w.bus.PublishResult(ctx, r); err != nil {
		return fmt.Errorf("publish DONE: %w", err)
	}
	return nil
}

func ms(d time.Duration) uint32 { return uint32(max(d, 0).Milliseconds()) }

// result is a result of the task's attempt with the slot's identity.
func (w *Worker) result(sl *slot, t *spoolv1.SegmentTask, phase spoolv1.Phase) *spoolv1.SegmentResult {
	info := sl.engine.Info()
	return &spoolv1.SegmentResult{JobId: t.JobId, Index: t.Index, Attempt: t.Attempt, Phase: phase, Pool: t.Pool,
		WorkerId: sl.id, Node: w.node, GpuUuid: sl.gpu.UUID, GpuName: sl.gpu.Name, Backend: info.Backend,
		Model: info.Model, ModelVersion: info.ModelVersion, SentAt: timestamppb.Now()}
}
