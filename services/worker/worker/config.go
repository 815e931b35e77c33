// Package worker is spool's GPU worker: slots that each hold a warm
// inference engine and generate one segment at a time. A slot fetches
// exactly one task from its pool's consumer, runs the engine, hands out the
// tail state the moment denoising ends (uploaded, then TAIL_READY), pipes the
// kept frames through the encoder, retimes the fragment onto the video's
// timeline, uploads it and publishes DONE before it acks.
package worker

import (
	"fmt"
	"time"

	"github.com/spoolvideo/spool/libs/config"
)

// Config is the worker's configuration, from SPOOL_* variables.
type Config struct {
	config.Service
	config.Catalog
	NATS config.NATS `envconfig:"NATS"`
	S3   config.S3   `envconfig:"S3"`

	ID         string        `envconfig:"WORKER_ID" desc:"worker id; default: the host name and process id"`
	Node       string        `envconfig:"WORKER_NODE" desc:"node name reported with results; default: the host name"`
	Pool       string        `envconfig:"WORKER_POOL" default:"default" desc:"GPU pool whose tasks this worker takes"`
	Backend    string        `envconfig:"WORKER_BACKEND" desc:"inference backend (ref, sim, python or cuda) whose catalog models the worker loads when SPOOL_WORKER_MODELS is empty; when both are set, every model must run on it; both empty: every CPU model of the catalog (ref, ref-talk, sim), as the default pool serves"`
	Models     []string      `envconfig:"WORKER_MODELS" desc:"the catalog models the worker loads and serves, comma-separated, each on its catalog backend; a task for any other model fails permanently; empty: every catalog model of SPOOL_WORKER_BACKEND"`
	Params     string        `envconfig:"WORKER_BACKEND_PARAMS" desc:"backend parameters, key=value;key=value"`
	PluginDir  string        `envconfig:"WORKER_PLUGIN_DIR" desc:"where backend plugins live; default: $SPOOL_INFER_PLUGIN_DIR"`
	Weights    string        `envconfig:"WORKER_WEIGHTS_DIR" desc:"directory of the weights of the one model the worker loads"`
	ModelsDir  string        `envconfig:"WORKER_MODELS_DIR" desc:"directory with a folder of weights per catalog model, named as the model (e.g. /models/skyreels-v2-df-1.3b-540p); a python model's engine loads its folder; the model volume of a pool"`
	Slots      int           `envconfig:"WORKER_SLOTS" default:"1" desc:"CPU slots when the worker has no GPU"`
	Heartbeat  time.Duration `envconfig:"WORKER_HEARTBEAT" default:"10s" desc:"AckProgress interval while a segment runs (about AckWait/3)"`
	Drain      time.Duration `envconfig:"WORKER_DRAIN_TIMEOUT" default:"5m" desc:"on SIGTERM, how long a running segment may take to finish before it is handed back"`
	MinFreeMiB uint64        `envconfig:"WORKER_MIN_FREE_MIB" default:"0" desc:"free GPU memory (MiB) the model needs; a GPU slot with less does not fetch"`
	Register   time.Duration `envconfig:"WORKER_REGISTER_EVERY" default:"10s" desc:"how often the worker refreshes its entry in the spool_workers bucket (under its TTL)"`
	Pipeline   int           `envconfig:"WORKER_PIPELINE" default:"2" desc:"segments per slot that may finish (encode, upload, DONE) behind the engine while it runs the next"`
	Prefetch   time.Duration `envconfig:"WORKER_PREFETCH" default:"100ms" desc:"fetch the next task during the last denoising step when the engine is expected to finish within this (short segments only); 0 never"`
	Encoder    string        `envconfig:"WORKER_ENCODER" default:"ffmpeg" desc:"ffmpeg; or discard, for control-plane benchmarks only: frames are dropped and no video is uploaded"`
	TailWait   time.Duration `envconfig:"WORKER_TAIL_WAIT" default:"1m" desc:"how long a chain segment waits for its conditioning tail to reach the object store (the previous segment's worker uploads it behind the hand-off); a tail whose upload fails for good is voided at once and nobody waits for it, so this bounds only the wait for a tail whose worker died after the hand-off; past it the segment is retried, uncounted, on the previous segment's newest tail"`
	StoreRetry time.Duration `envconfig:"WORKER_STORE_RETRY" default:"10s" desc:"how long a failing object-store request (a tail or fragment upload, a download) is retried before it fails its attempt, so that a store restart does not fail segments; a tail upload that fails for good then voids its hand-off at once (TAIL_VOID): the segments waiting for it are handed back uncounted and its segment is redone"`
	Codec      string        `envconfig:"WORKER_CODEC" default:"h264" desc:"video codec of the fragments: h264; or lossless (RGB, for tests that check pixels); every worker and the stitcher must agree"`

	// The stall watchdog (watchdog.go).
	StallTimeout time.Duration `envconfig:"WORKER_STALL_TIMEOUT" default:"5m" desc:"a segment that makes no progress this long (no denoise step, tail, frame or transfer), or whose task's deadline passes, ends FAILED (stalled) and is retried; a model's catalog step time × 5 when that is longer"`
	StallGrace   time.Duration `envconfig:"WORKER_STALL_GRACE" default:"30s" desc:"how long a stalled segment's engine has to return after its cancel; past it the worker reports the segment, deregisters and exits with status 75, so that it restarts with a fresh GPU context"`
}

func (c Config) validate() error {
	switch {
	case c.Slots < 1:
		return fmt.Errorf("worker: SPOOL_WORKER_SLOTS %d: want ≥ 1", c.Slots)
	case c.Heartbeat <= 0 || c.Drain < 0 || c.Register <= 0:
		return fmt.Errorf("worker: heartbeat %v and register interval %v must be > 0, drain timeout %v ≥ 0", c.Heartbeat, c.Register, c.Drain)
	case c.Pool == "":
		return fmt.Errorf("worker: SPOOL_WORKER_POOL must be set")
	case c.StallTimeout <= 0 || c.StallGrace <= 0:
		return fmt.Errorf("worker: SPOOL_WORKER_STALL_TIMEOUT %v and SPOOL_WORKER_STALL_GRACE %v: want > 0", c.StallTimeout, c.StallGrace)
	case c.TailWait <= 0 || c.StoreRetry <= 0:
		return fmt.Errorf("worker: SPOOL_WORKER_TAIL_WAIT %v and SPOOL_WORKER_STORE_RETRY %v: want > 0", c.TailWait, c.StoreRetry)
	case c.Pipeline < 1:
		return fmt.Errorf("worker: SPOOL_WORKER_PIPELINE %d: want ≥ 1", c.Pipeline)
	case c.Encoder != EncoderFFmpeg && c.Encoder != EncoderDiscard:
		return fmt.Errorf("worker: SPOOL_WORKER_ENCODER %q: want %s or %s", c.Encoder, EncoderFFmpeg, EncoderDiscard)
	}
	return nil
}
