package store

import (
	"encoding/json"
	"time"
)

// JobState is the life cycle of a job.
type JobState string

// Job states.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
	JobRejected  JobState = "rejected"
)

// JobStates lists every job state, in the order of a job's life.
var JobStates = []JobState{JobQueued, JobRunning, JobSucceeded, JobFailed, JobCancelled, JobRejected}

// Terminal reports whether no further change can happen.
func (s JobState) Terminal() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled || s == JobRejected
}

// SegmentState is the life cycle of a segment.
type SegmentState string

// Segment states. A chain segment is pending until its predecessor's tail
// is ready; an independent one is ready until admitted to its pool's queue;
// queued once its task is published.
const (
	SegPending   SegmentState = "pending"
	SegReady     SegmentState = "ready"
	SegQueued    SegmentState = "queued"
	SegRunning   SegmentState = "running"
	SegTailReady SegmentState = "tail_ready"
	SegDone      SegmentState = "done"
	SegFailed    SegmentState = "failed"
	SegCancelled SegmentState = "cancelled"
)

// Outcome is what became of one attempt.
type Outcome string

// Attempt outcomes.
const (
	OutcomeQueued    Outcome = "queued"
	OutcomeRunning   Outcome = "running"
	OutcomeTailReady Outcome = "tail_ready"
	OutcomeDone      Outcome = "done"
	OutcomeFailed    Outcome = "failed"
	OutcomeDuplicate Outcome = "duplicate"
	OutcomeAbandoned Outcome = "abandoned"
)

// ArtifactKind classifies a stored object.
type ArtifactKind string

// Artifact kinds.
const (
	KindSegment ArtifactKind = "segment"
	KindTail    ArtifactKind = "tail"
	KindFinal   ArtifactKind = "final"
	KindHLS     ArtifactKind = "hls"
)

// Job is a row of jobs.
type Job struct {
	ID            string
	Tenant        string
	Priority      int
	Pool          string
	Model         string
	Mode          string // "chain" or "independent"
	State         JobState
	Spec          json.RawMessage // the JobSpec as submitted, protojson
	Live          bool
	TotalFrames   int64 // 0 when live
	FPS           int
	Width, Height int
	SegmentsTotal int // 0 when live
	SegmentsDone  int
	Progress      float64
	FinalKey      string
	FinalSHA256   string
	FinalBytes    int64
	FinalFrames   int64
	ErrorCode     string
	ErrorField    string
	ErrorMessage  string
	TraceID       string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	StartedAt     *time.Time
	FinishedAt    *time.Time

	// Traceparent is the job's W3C trace context (the span that planned
	// it): every span about the job is started as its child.
	Traceparent string
	// LiveAheadS is how far, in seconds of video, a live job may run ahead
	// of its live edge; 0 for a bounded job.
	LiveAheadS float64
	// LiveStartAt starts a live job's clock: frame f is at the live edge at
	// LiveStartAt + f/FPS. Nil until segment 0 is first released.
	LiveStartAt *time.Time
	// LongestPiece is the frame count of the longest piece the job's plan
	// can produce (plan.Plan.LongestPiece): its HLS target duration.
	LongestPiece int
	// FramesDone is the frames its committed segments add to the video,
	// plus the input video's frames it starts with (InputFrames).
	FramesDone int64
	// InputFrames is how many output frames, from frame 0, are an
	// extension's input video (include_input), kept as InputKey holds them:
	// a fragmented MP4 made at intake with the workers' codec. TotalFrames
	// counts them. 0 and "" otherwise.
	InputFrames int64
	InputKey    string
	// DeletedAt is when the job's objects were deleted (DELETE /jobs/{id}
	// or retention); nil while they exist. The row and its lineage stay.
	DeletedAt *time.Time
	// AudioKey is the manifest of the AAC encode of the job's audio that
	// its final video and preview carry (blob.UploadDerived …/aac/…); ""
	// for a silent job. WaveformKey is that audio's loudness envelope for
	// the dashboard; "" likewise.
	AudioKey, WaveformKey string
}

// FramesMade is how many frames the job has made: its final video's once
// there is one, else those of its committed segments. 0 before any.
func (j Job) FramesMade() int64 {
	if j.FinalKey != "" {
		return j.FinalFrames
	}
	return j.FramesDone
}

// Segment is a row of segments.
type Segment struct {
	JobID            string
	Index            int
	FirstFrame       int64
	Frames           int
	Overlap          int
	Trim             int
	Prompt           string
	Seed             uint64
	Pool             string
	State            SegmentState
	Attempts         int
	ConditioningKey  string
	CommittedAttempt int // 0 until done
	TailKey          string
	VideoKey         string
	VideoSHA256      string
	VideoBytes       int64
	VideoFrames      int
	UpdatedAt        time.Time
	// Task is the segment's SegmentTask (protobuf) without attempt and
	// conditioning key, kept so that it can be published again at any time.
	Task []byte
}

// Timings are per-phase durations of an attempt, in milliseconds.
type Timings struct {
	QueueMS, DenoiseMS, DecodeMS, EncodeMS, UploadMS int
}

// Worker identifies where an attempt ran.
type Worker struct {
	WorkerID     string
	Node         string
	GPUUUID      string
	GPUName      string
	Backend      string
	Model        string
	ModelVersion string
}

// Attempt is a row of attempts.
type Attempt struct {
	JobID      string
	Index      int
	Attempt    int
	Outcome    Outcome
	Worker     Worker
	Timings    Timings
	ErrorClass string
	ErrorMsg   string
	QueuedAt   time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Artifact is a row of artifacts: an object the system stored.
type Artifact struct {
	Key     string // object key, under jobs/<job>/
	JobID   string
	Kind    ArtifactKind
	Index   *int // the segment; nil for job-wide objects (final, playlist)
	Attempt int  // the producing attempt; 0 for none (final, playlist)
	SHA256  string
	Bytes   int64
	Frames  int64
	// CreatedAt is set by the database.
	CreatedAt time.Time
}

// OutboxMsg is a message to publish.
type OutboxMsg struct {
	ID      int64
	MsgID   string // Nats-Msg-Id; unique
	Subject string
	Payload []byte
	Headers map[string]string
	// NotBefore delays the publish (retry backoff); zero means now.
	NotBefore time.Time
}
