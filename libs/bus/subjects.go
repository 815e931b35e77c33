package bus

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spoolvideo/spool/libs/ident"
)

// Subjects, streams, consumers and buckets. Subjects are lowercase,
// dot-separated, general to specific; this file is the only place that
// spells them.
const (
	SubjectJobSubmit = "spool.jobs.submit"
	subjectSegments  = "spool.segments."
	subjectResults   = "spool.results."
	subjectEvents    = "spool.events."
	subjectCancel    = "spool.control.cancel."
	subjectVoid      = "spool.control.void."

	// SubjectAllSegments, SubjectAllResults, SubjectAllEvents,
	// SubjectAllCancels and SubjectAllVoids match every pool or job.
	SubjectAllSegments = subjectSegments + "*"
	SubjectAllResults  = subjectResults + "*"
	SubjectAllEvents   = subjectEvents + "*"
	SubjectAllCancels  = subjectCancel + "*"
	SubjectAllVoids    = subjectVoid + "*"

	StreamJobs     = "SPOOL_JOBS"
	StreamSegments = "SPOOL_SEGMENTS"
	StreamResults  = "SPOOL_RESULTS"
	StreamEvents   = "SPOOL_EVENTS"

	ConsumerDispatcher = "dispatcher"
	ConsumerStitcher   = "stitcher"

	BucketWorkers   = "spool_workers"
	BucketCancelled = "spool_cancelled"

	// CancelledTTL is how long a job stays in spool_cancelled: far longer
	// than any of its tasks can wait in a queue.
	CancelledTTL = 7 * 24 * time.Hour
)

// ValidToken reports whether s can be a subject token (ident.Rule).
func ValidToken(s string) bool { return ident.Valid(s) }

// join is prefix+tok when tok is a valid token, else an error naming kind.
func join(prefix, kind, tok string) (string, error) {
	if !ValidToken(tok) {
		return "", fmt.Errorf("bus: %w: %s %q: want %s", ErrInvalidToken, kind, tok, ident.Rule)
	}
	return prefix + tok, nil
}

// SegmentsSubject is spool.segments.<pool>.
func SegmentsSubject(pool string) (string, error) {
	return join(subjectSegments, "pool", pool)
}

// ResultsSubject is spool.results.<job>.
func ResultsSubject(job string) (string, error) {
	return join(subjectResults, "job", job)
}

// EventsSubject is spool.events.<job>.
func EventsSubject(job string) (string, error) {
	return join(subjectEvents, "job", job)
}

// CancelSubject is spool.control.cancel.<job>, on core NATS.
func CancelSubject(job string) (string, error) {
	return join(subjectCancel, "job", job)
}

// VoidSubject is spool.control.void.<job>, on core NATS: the dispatcher
// tells the workers that a tail of the job, handed off and never stored,
// is void (PublishVoid), so that none waits for it.
func VoidSubject(job string) (string, error) {
	return join(subjectVoid, "job", job)
}

// PoolConsumer is the durable consumer of a pool's segments, pool-<pool>.
func PoolConsumer(pool string) (string, error) {
	return join("pool-", "pool", pool)
}

// TaskMsgID is the Nats-Msg-Id of a segment task: <job>.<seg>.<attempt>.task.
func TaskMsgID(job string, seg, attempt uint32) string {
	return job + "." + u(seg) + "." + u(attempt) + ".task"
}

// ResultMsgID is the Nats-Msg-Id of a result: <job>.<seg>.<attempt>.<phase>.
func ResultMsgID(job string, seg, attempt uint32, phase string) string {
	return job + "." + u(seg) + "." + u(attempt) + "." + phase
}

func u(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
