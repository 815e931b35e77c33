package worker

// EncoderFFmpeg and EncoderDiscard are the values of SPOOL_WORKER_ENCODER.
const (
	EncoderFFmpeg  = "ffmpeg"
	EncoderDiscard = "discard"
)

// discardEncoder exists for the control-plane benchmarks only (DESIGN's
// throughput and scaling figures), so that they measure spool and not
// ffmpeg: it counts the frames and drops them, and the segment's DONE
// carries no video. A job run with it has no picture to stitch.
type discardEncoder struct{ frames int }

func (e *discardEncoder) WriteFrame([]byte) error { e.frames++; return nil }

func (e *discardEncoder) Close() error { return nil }
