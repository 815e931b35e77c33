// Package stitcher is spool's stitcher: it turns the committed segment
// fragments of each job, in segment order, into the video the user
// downloads and a live HLS preview. Chain segments are joined by stream
// copy; the overlaps of independent segments are crossfaded (only those
// frames are decoded, blended and encoded). The final MP4 is a fragmented
// MP4 streamed into one multipart upload while the job runs, so that
// finalizing costs about one part. Its cursor lives in Postgres (table
// stitches, one piece per segment in stitch_pieces) and the pieces in
// MinIO, so a stitcher that dies resumes without a lost or doubled frame.
package stitcher

import (
	"fmt"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/config"
)

// Config is the stitcher's configuration, from SPOOL_* variables.
type Config struct {
	config.Service
	NATS     config.NATS     `envconfig:"NATS"`
	Postgres config.Postgres `envconfig:"PG"`
	S3       config.S3       `envconfig:"S3"`

	ID         string        `envconfig:"STITCHER_ID" desc:"this stitcher's id in job leases; default: the host name and process id"`
	PartSize   int64         `envconfig:"STITCHER_PART_SIZE" default:"8388608" desc:"bytes buffered before a part of the final MP4 is uploaded (≥ 5 MiB); bounds the memory per open job"`
	OpenJobs   int           `envconfig:"STITCHER_OPEN_JOBS" default:"4" desc:"jobs whose part buffer is kept in memory; others are rebuilt from their pieces when they next grow"`
	Parallel   int           `envconfig:"STITCHER_PARALLEL" default:"4" desc:"jobs appended at once"`
	Lease      time.Duration `envconfig:"STITCHER_LEASE" default:"30s" desc:"how long a job stays with the stitcher that appends to it after its last append"`
	LiveWindow int           `envconfig:"STITCHER_LIVE_WINDOW" default:"10" desc:"segments in the sliding HLS window of a live job, at least; more while they last under three target durations"`
	Codec      string        `envconfig:"STITCHER_CODEC" default:"h264" desc:"codec of the crossfades: h264, or lossless for tests; must match the workers'"`
	MemoryMiB  int64         `envconfig:"STITCHER_MEMORY_LIMIT_MIB" default:"32" desc:"soft limit of the Go heap (GOMEMLIMIT), MiB; 0 leaves the runtime's default"`
	Sweep      time.Duration `envconfig:"STITCHER_SWEEP_EVERY" default:"10s" desc:"how often running jobs are checked for appends whose DONE was missed"`
}

func (c Config) validate() error {
	switch {
	case c.PartSize < blob.MinPartSize:
		return fmt.Errorf("stitcher: SPOOL_STITCHER_PART_SIZE %d: want ≥ %d (S3's smallest part)", c.PartSize, blob.MinPartSize)
	case c.OpenJobs < 1 || c.Parallel < 1 || c.LiveWindow < 1:
		return fmt.Errorf("stitcher: SPOOL_STITCHER_OPEN_JOBS %d, SPOOL_STITCHER_PARALLEL %d and SPOOL_STITCHER_LIVE_WINDOW %d: want ≥ 1",
			c.OpenJobs, c.Parallel, c.LiveWindow)
	case c.Lease < time.Second || c.Sweep <= 0:
		return fmt.Errorf("stitcher: SPOOL_STITCHER_LEASE %v (≥ 1s) and SPOOL_STITCHER_SWEEP_EVERY %v (> 0)", c.Lease, c.Sweep)
	}
	return nil
}
