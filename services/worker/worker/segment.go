package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/media"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// errPermanent marks a task that can never succeed (an invalid request).
var errPermanent = errors.New("permanent")

// sink is the engine's output path for one segment: it hands the tail off
// (TAIL_READY) the moment denoising ends, uploading it behind, and feeds
// the kept frames to the encoder.
type sink struct {
	ctx      context.Context
	d        *delivery
	w        *Worker
	slot     *slot
	task     *spoolv1.SegmentTask
	enc      frameEncoder
	start    time.Time
	denoised time.Time
	tailKey  string
	tail     *tailEntry    // the tail and its upload, which DONE waits for
	tailHeld time.Duration // how long the hand-off held the engine
	kept     int
	pack     []byte // packs rows when the engine's stride exceeds width × 3
}

func (s *sink) Step(step, total int) error {
	if s.slot.prefetch != nil {
		s.slot.prefetch.step(s.w.runCtx, step, total)
	}
	return nil
}

// Tail hands the tail state off: the process keeps a copy, TAIL_READY goes
// out at once, and the upload runs behind it. The next segment starts from
// the copy when it lands on a slot of this process; elsewhere it waits for
// the upload (conditioning). DONE waits for the upload, so a committed
// segment's tail is always in the store. The state carries its own CRC,
// so the upload skips the SHA-256.
//
// The upload is retried for cfg.StoreRetry, and is not cut short by the
// attempt's cancel (the next segment may already be running on it), only
// by the stall timeout past its retries. One that fails for good voids the
// hand-off at once (voidTail), before the process's own waiters hear of
// the failure.
func (s *sink) Tail(state []byte) error {
	s.denoised = time.Now()
	key, err := blob.SegmentTail(s.task.JobId, s.task.Index, s.task.Attempt)
	if err != nil {
		return err
	}
	e := s.w.tails.add(string(key), state)
	s.tail, s.tailKey = e, string(key)
	s.d.tail.Store(e)
	go func() {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.w.cfg.StoreRetry+s.w.stallTimeoutFor(s.task.Model))
		defer cancel()
		err := retryStore(ctx, s.w.cfg.StoreRetry, func(ctx context.Context) error {
			_, err := s.w.blob.Put(ctx, key, progressReader{bytes.NewReader(e.state), &e.progress}, int64(len(e.state)),
				blob.PutOptions{ContentType: "application/octet-stream", NoSHA256: true})
			return err
		})
		if err != nil {
			err = fmt.Errorf("upload tail (retried for %v): %w", s.w.cfg.StoreRetry, err)
			s.w.voidTail(s.d, string(key), err)
		}
		e.done(err, time.Since(began))
	}()
	r := s.w.result(s.slot, s.task, spoolv1.Phase_PHASE_TAIL_READY)
	r.TailKey = s.tailKey
	r.Timings = &spoolv1.Timings{DenoiseMs: ms(s.denoised.Sub(s.start))}
	if err := s.w.publishResult(s.ctx, r); err != nil {
		return fmt.Errorf("publish TAIL_READY: %w", err)
	}
	s.tailHeld = time.Since(s.denoised)
	return nil
}

// Frame encodes the frames the video keeps. In chain mode the first
// `overlap` frames are dropped: they are the previous segment's last frames,
// reproduced exactly from its tail. In independent mode they are kept for
// the stitcher's crossfade. Frames generated only to meet the model's
// alignment (trim) are dropped at the end.
func (s *sink) Frame(f infer.Frame) error {
	if !Keeps(s.task, f.Index) {
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

// output is a generated segment on its way out: the engine is done with
// it, the encoder may still be working through its last frames.
type output struct {
	sink    *sink
	enc     frameEncoder
	encoded *bytes.Buffer
	decoded time.Time  // the engine returned
	cond    *tailEntry // the conditioning, when this process made it: its upload must succeed before DONE
}

// frameEncoder is the encoder's side the worker uses: media.Encoder, or the
// discard encoder of the control-plane benchmarks.
type frameEncoder interface {
	WriteFrame(rgb []byte) error
	Close() error
}

// generate runs the engine on a delivery: download the conditioning tail,
// start the encoder, run. The tail goes out from the sink the moment
// denoising ends; the kept frames stream into the encoder as they decode.
func (w *Worker) generate(d *delivery) (*output, error) {
	ctx, task, sl := d.ctx, d.task, d.slot
	engine, err := w.serve(sl, task)
	if err != nil {
		return nil, err
	}
	cond, condEntry, err := w.conditioning(ctx, task)
	if err != nil {
		return nil, err
	}
	prefix, err := w.prefix(ctx, task)
	if err != nil {
		return nil, err
	}
	audio, ref, err := w.sound(ctx, task)
	if err != nil {
		return nil, err
	}
	if condEntry != nil {
		d.followConditioning(condEntry)
	}
	out := &output{encoded: &bytes.Buffer{}, cond: condEntry}
	opts := media.EncodeOptions{Width: int(task.Width), Height: int(task.Height), FPS: int(task.Fps), Codec: w.codec,
		Keyframes: CrossfadeKeyframes(task)}
	if w.cfg.Encoder == EncoderDiscard {
		out.enc = &discardEncoder{}
	} else {
		enc, buf, err := sl.takeEncoder(w.encCtx, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errPermanent, err)
		}
		out.enc, out.encoded = enc, buf
	}
	out.sink = &sink{ctx: ctx, d: d, w: w, slot: sl, task: task, enc: out.enc}
	req := Request(task, cond, Media{Prefix: prefix, Audio: audio, Reference: ref})
	start := time.Now()
	out.sink.start = start
	sl.since.Store(start.UnixNano())
	runErr := engine.Run(ctx, req, progressSink{out.sink, d.watch})
	out.decoded = time.Now()
	if sl.prefetch != nil {
		sl.prefetch.ran()
	}
	if w.cfg.Encoder != EncoderDiscard && w.runCtx.Err() == nil {
		sl.warm = warmUp(w.encCtx, opts) // for the next segment, likely of the same job
	}
	sl.since.Store(0)
	sl.busy.Add(int64(out.decoded.Sub(start)))
	if runErr != nil {
		_ = out.enc.Close()
		if errors.Is(runErr, infer.ErrInvalidRequest) {
			return nil, fmt.Errorf("%w: %w", errPermanent, runErr)
		}
		return nil, runErr
	}
	return out, nil
}

// finish closes the encoder, retimes the fragment onto the video's
// timeline, uploads it by streaming multipart, waits for the tails it
// depends on to be in the store, and publishes DONE with its sha256,
// frames and per-phase timings (the upload phase counts the tail's upload,
// which ran beside the engine).
func (w *Worker) finish(d *delivery, out *output) error {
	ctx, task, sl, s := d.ctx, d.task, d.slot, out.sink
	if err := out.enc.Close(); err != nil {
		return err
	}
	encodeDone := time.Now()
	r := w.result(sl, task, spoolv1.Phase_PHASE_DONE)
	r.TailKey, r.Frames = s.tailKey, uint32(s.kept)
	if de, ok := out.enc.(*discardEncoder); ok {
		r.Frames = uint32(de.frames)
	} else {
		c, err := media.Retime(out.encoded.Bytes(), int(task.Fps), KeptStart(task), task.Index+1)
		if err != nil {
			return err
		}
		key, err := blob.SegmentVideo(task.JobId, task.Index, task.Attempt, "mp4")
		if err != nil {
			return err
		}
		var info blob.ObjectInfo
		err = retryStore(ctx, w.cfg.StoreRetry, func(ctx context.Context) error {
			up := w.blob.NewWriter(ctx, key, blob.PutOptions{ContentType: "video/mp4"})
			for _, part := range [][]byte{c.Init, c.Media} {
				if err := writeAll(ctx, up, part); err != nil {
					up.Abort(err)
					return err
				}
			}
			if err := up.Close(); err != nil {
				return err
			}
			info = up.Info()
			return nil
		})
		if err != nil {
			return fmt.Errorf("upload fragment: %w", err)
		}
		r.VideoKey, r.Sha256, r.Bytes, r.Frames = string(key), info.SHA256, uint64(info.Size), uint32(c.Frames)
	}
	// DONE commits the segment: its own tail, and the tail it was
	// conditioned on when this process made it, must be in the store first.
	var tailUp time.Duration
	if s.tail != nil {
		if err := s.tail.wait(ctx); err != nil {
			return err
		}
		tailUp = s.tail.took
	}
	if out.cond != nil {
		if err := out.cond.wait(ctx); err != nil {
			return fmt.Errorf("%w: the tail it was conditioned on: %w", errConditioning, err)
		}
	}
	denoised := s.denoised
	if denoised.IsZero() {
		denoised = out.decoded
	}
	phases := map[string]time.Duration{"queue": d.queued, "denoise": denoised.Sub(s.start),
		"decode": out.decoded.Sub(denoised) - s.tailHeld, "encode": encodeDone.Sub(out.decoded),
		"upload": time.Since(encodeDone) + tailUp}
	r.Timings = &spoolv1.Timings{QueueMs: ms(phases["queue"]), DenoiseMs: ms(phases["denoise"]), DecodeMs: ms(phases["decode"]),
		EncodeMs: ms(phases["encode"]), UploadMs: ms(phases["upload"])}
	phaseSpans(ctx, sl, task, []phaseMark{{"segment.denoise", s.start}, {"segment.decode", denoised},
		{"segment.encode", out.decoded}, {"segment.upload", encodeDone}, {"", time.Now()}})
	if err := w.publishResult(ctx, r); err != nil {
		return fmt.Errorf("publish DONE: %w", err)
	}
	w.metrics.observePhases(ctx, task.Pool, phases)
	return nil
}

func ms(d time.Duration) uint32 { return uint32(max(d, 0).Milliseconds()) }

// result is a result of the task's attempt with the slot's identity and
// the model that runs it (none when the slot does not serve the task's).
func (w *Worker) result(sl *slot, t *spoolv1.SegmentTask, phase spoolv1.Phase) *spoolv1.SegmentResult {
	r := &spoolv1.SegmentResult{JobId: t.JobId, Index: t.Index, Attempt: t.Attempt, Phase: phase, Pool: t.Pool,
		WorkerId: sl.id, Node: w.node, GpuUuid: sl.gpu.UUID, GpuName: sl.gpu.Name, SentAt: timestamppb.Now()}
	if e := sl.engine(t.Model); e != nil {
		info := e.Info()
		r.Backend, r.Model, r.ModelVersion = info.Backend, info.Model, info.ModelVersion
	}
	return r
}
