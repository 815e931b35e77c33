package dispatcher

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/plan"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// traceHeaders captures ctx's trace context for an outbox row, so the
// published message continues the job's trace.
func traceHeaders(ctx context.Context) map[string]string {
	h := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(h))
	return h
}

// traceparentOf is ctx's span as a W3C traceparent; empty when ctx has none.
func traceparentOf(ctx context.Context) string {
	return traceHeaders(ctx)["traceparent"]
}

// traceIDOf is ctx's trace id in hex; empty when ctx has no span.
func traceIDOf(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// taskHeaders are the headers of a task: the job's trace context from its
// template, so that every attempt joins the job's trace under dispatch.plan
// whichever path publishes it (admission, hand-off, retry, reconciler); ctx's
// when the template has none (a job planned before tasks carried it).
func taskHeaders(ctx context.Context, t *spoolv1.SegmentTask) map[string]string {
	if t.Traceparent == "" {
		return traceHeaders(ctx)
	}
	return map[string]string{"traceparent": t.Traceparent}
}

// templateTraceparent is the trace context stored in a segment's template.
func templateTraceparent(tpl []byte) string {
	var t spoolv1.SegmentTask
	if proto.Unmarshal(tpl, &t) != nil {
		return ""
	}
	return t.Traceparent
}

// Template is a segment's task without attempt, conditioning key, output
// prefix and deadline.
func Template(j jobspec.Job, id string, s plan.Segment, last bool) *spoolv1.SegmentTask {
	mode := spoolv1.Mode_MODE_CHAIN
	tail := uint32(j.Overlap)
	if j.Mode == plan.Independent {
		mode, tail = spoolv1.Mode_MODE_INDEPENDENT, 0
	}
	var crossfade uint32
	if j.Mode == plan.Independent {
		crossfade = uint32(j.Overlap)
	}
	if last {
		tail, crossfade = 0, 0
	}
	return &spoolv1.SegmentTask{
		JobId: id, Index: uint32(s.Index), FirstFrame: s.FirstFrame, Frames: uint32(s.Frames),
		Overlap: uint32(s.Overlap), Prompt: s.Prompt, Seed: s.Seed, Model: j.Model,
		Width: uint32(j.Width), Height: uint32(j.Height), Fps: uint32(j.FPS), Steps: uint32(j.Steps),
		Guidance: j.Guidance, Mode: mode, Pool: j.Pool, TailFrames: tail, TrimFrames: uint32(s.Trim), CrossfadeFrames: crossfade,
	}
}

// segmentRows are the store rows of planned segments, with their task
// templates. Segments that can start (all of an independent job, the first
// of a chain) are ready: admission queues them in fair order.
// traceparent is the job's trace context that every task carries.
// Segment 0 of a job with an image or a video starts from in's prefix;
// every segment of a job with audio or a reference reads in's.
func segmentRows(j jobspec.Job, id string, segs []plan.Segment, traceparent string, in Inputs) ([]store.Segment, error) {
	rows := make([]store.Segment, len(segs))
	for i, s := range segs {
		last := !j.Live && s.Index == j.Plan.Count()-1
		t := Template(j, id, s, last)
		t.Traceparent = traceparent
		if s.Index == 0 && in.PrefixFrames > 0 {
			t.PrefixKey, t.PrefixFrames = in.PrefixKey, uint32(in.PrefixFrames)
		}
		in.Sound.Apply(t, j)
		tpl, err := proto.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("encode task: %w", err)
		}
		state := store.SegPending
		if j.Mode == plan.Independent || s.Index == 0 {
			state = store.SegReady
		}
		rows[i] = store.Segment{Index: int(s.Index), FirstFrame: s.FirstFrame, Frames: s.Frames, Overlap: s.Overlap,
			Trim: s.Trim, Prompt: s.Prompt, Seed: s.Seed, Pool: j.Pool, State: state, Task: tpl}
	}
	return rows, nil
}

// taskMsg is the outbox row publishing attempt of a segment from its
// template, no earlier than notBefore (zero: now).
func (d *Dispatcher) taskMsg(ctx context.Context, tpl []byte, attempt int, condKey string, notBefore time.Time) (store.OutboxMsg, error) {
	var t spoolv1.SegmentTask
	if err := proto.Unmarshal(tpl, &t); err != nil {
		return store.OutboxMsg{}, fmt.Errorf("decode task template: %w", err)
	}
	prefix, err := blob.AttemptPrefix(t.JobId, t.Index, uint32(attempt))
	if err != nil {
		return store.OutboxMsg{}, err
	}
	t.Attempt, t.ConditioningKey, t.OutputPrefix = uint32(attempt), condKey, string(prefix)
	out := time.Now() // the deadline runs from when the task goes out
	if notBefore.After(out) {
		out = notBefore
	}
	t.Deadline = timestamppb.New(out.Add(d.cfg.SegmentDeadline))
	subject, err := bus.SegmentsSubject(t.Pool)
	if err != nil {
		return store.OutboxMsg{}, err
	}
	payload, err := proto.Marshal(&t)
	if err != nil {
		return store.OutboxMsg{}, fmt.Errorf("encode task: %w", err)
	}
	return store.OutboxMsg{MsgID: bus.TaskMsgID(t.JobId, t.Index, t.Attempt), Subject: subject, Payload: payload,
		Headers: taskHeaders(ctx, &t), NotBefore: notBefore}, nil
}

// eventMsg is the outbox row of a job event with a deterministic id.
func eventMsg(ctx context.Context, msgID string, e *spoolv1.JobEvent) (store.OutboxMsg, error) {
	subject, err := bus.EventsSubject(e.GetJobId())
	if err != nil {
		return store.OutboxMsg{}, err
	}
	if e.At == nil {
		e.At = timestamppb.Now()
	}
	payload, err := proto.Marshal(e)
	if err != nil {
		return store.OutboxMsg{}, fmt.Errorf("encode event: %w", err)
	}
	return store.OutboxMsg{MsgID: msgID, Subject: subject, Payload: payload, Headers: traceHeaders(ctx)}, nil
}
