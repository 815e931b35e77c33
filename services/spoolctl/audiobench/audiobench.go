// Package audiobench measures a talking-head job's sound for `make bench`,
// from intake to the final MP4, on a devstack:
//
//   - intake: a one-hour speech-like track (MP3 64 kb/s stereo 44.1 kHz,
//     made once with ffmpeg and cached in CacheDir) is put into MinIO as an
//     upload, then taken in as the dispatcher takes in a job's audio
//     (dispatcher/sound.go): downloaded to a temporary file, decoded once
//     by media.IntakeAudio into the model's PCM (16 kHz, ref-talk) and the
//     AAC encode, both streamed into MinIO through blob writers, then the
//     index, peaks and manifest put. Timed whole; with the CPU time and
//     peak RSS of ffmpeg (getrusage of the children) and of this process
//     (VmHWM, reset before the intake);
//   - a worker's read: worker.SegmentAudio of segments of the job's 720p
//     plan (121 frames at 24 fps) at its start, middle and end, each a
//     ranged read of exactly its samples from MinIO, timed over many
//     reads; against a read of the whole PCM object, which each segment
//     would need without ranged reads;
//   - the stitcher: stitchbench's one-hour 720p job finalized without an
//     audio track and with one (stitchbench's Sound), in one run, against
//     the stitch targets (≤ 1 s finalize, ≤ 64 MB peak RSS).
package audiobench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/devstack"
	"github.com/spoolvideo/spool/libs/jobspec"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/stitcher/stitchbench"
)

// Audio is the "audio" object of bench/results.json.
type Audio struct {
	Source   string  `json:"source"`
	SourceS  int     `json:"source_s"`
	SourceMB float64 `json:"source_mb"`
	Model    string  `json:"model"`
	Rate     int     `json:"rate"`
	Intake   Intake  `json:"intake"`
	// Segments is the job's plan's segment count.
	Segments int64         `json:"segments"`
	Reads    []SegmentRead `json:"segment_reads"`
	// TrackBytes is the PCM object's size; BytesRatio a segment's read
	// (the start's) ÷ TrackBytes.
	TrackBytes int64   `json:"track_bytes"`
	BytesRatio float64 `json:"bytes_ratio"`
	// WholeReadMS is the median read of the whole PCM object into memory;
	// WholeOverSegment it ÷ the slowest position's p50 segment read.
	WholeReadMS      float64 `json:"whole_read_ms"`
	WholeOverSegment float64 `json:"whole_over_segment"`
	// Stitch and StitchSound are stitchbench's figures without and with
	// an audio track; the ratios with ÷ without.
	Stitch        stitchbench.Stitch `json:"stitch"`
	StitchSound   stitchbench.Stitch `json:"stitch_sound"`
	FinalizeRatio float64            `json:"finalize_ratio"`
	RSSRatio      float64            `json:"peak_rss_ratio"`
}

// Targets of the stitch with audio, as without (DESIGN §14).
const (
	TargetFinalizeMS = 1000
	TargetPeakRSSMB  = 64
)

// Options size the run; Short is CI's smoke form (two minutes of audio, a
// few reads, stitchbench's short form).
type Options struct {
	Short bool
	// CacheDir keeps the source between runs; "" is CacheDir().
	CacheDir string
	// Reads is how many times each segment is read; 0 is 50 (10 Short).
	Reads int
	// NoStitch leaves the stitcher's part out.
	NoStitch bool
	Log      io.Writer
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

const (
	model    = "ref-talk"
	tenant   = "bench"
	uploadID = "up-audiobench"
	refID    = "up-audiobenchref"
	jobID    = "audio-hour"
)

// Run runs the benchmark.
func Run(ctx context.Context, o Options) (Audio, error) {
	seconds, reads := 3600, 50
	if o.Short {
		seconds, reads = 120, 10
	}
	if o.Reads > 0 {
		reads = o.Reads
	}
	if o.CacheDir == "" {
		o.CacheDir = CacheDir()
	}
	src, err := source(ctx, o.CacheDir, seconds, o)
	if err != nil {
		return Audio{}, err
	}
	j, err := jobspec.Validate(&spoolv1.JobSpec{Id: jobID, Tenant: tenant, Prompt: "a person speaking", Model: model,
		Resolution: spoolv1.Resolution_RESOLUTION_720P, Audio: uploadID, Reference: refID}, jobspec.DefaultCatalog())
	if err != nil {
		return Audio{}, fmt.Errorf("audio bench: the job: %w", err)
	}
	res := Audio{Source: SourceFormat, SourceS: seconds, Model: model, Rate: j.AudioRate}
	if err := res.sound(ctx, o, j, src, reads); err != nil {
		return Audio{}, err
	}
	if o.NoStitch {
		return res, nil
	}
	for _, sound := range []bool{false, true} {
		o.logf("stitch bench, sound %v", sound)
		s, err := stitchbench.Run(ctx, stitchbench.Options{Short: o.Short, Sound: sound, Log: o.Log})
		if err != nil {
			return Audio{}, err
		}
		if sound {
			res.StitchSound = s
		} else {
			res.Stitch = s
		}
	}
	res.FinalizeRatio = res.StitchSound.FinalizeMS / res.Stitch.FinalizeMS
	res.RSSRatio = res.StitchSound.PeakRSSMB / res.Stitch.PeakRSSMB
	o.logf("audio: %+v", res)
	return res, nil
}

// sound measures the intake and the segment reads on a devstack of its
// own (MinIO), stopped before the stitcher's part starts its own.
func (a *Audio) sound(ctx context.Context, o Options, j jobspec.Job, src string, reads int) error {
	st, err := devstack.Start(ctx, devstack.Options{MinIO: true})
	if err != nil {
		return err
	}
	defer func() { _ = st.Stop() }()
	bl, err := blob.New(st.S3Config())
	if err != nil {
		return err
	}
	if err := bl.EnsureBucket(ctx); err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("audio bench: %w", err)
	}
	a.SourceMB = float64(len(data)) / (1 << 20)
	up, err := blob.UploadSource(j.Tenant, j.Audio)
	if err != nil {
		return err
	}
	if _, err := bl.Put(ctx, up, bytes.NewReader(data), int64(len(data)), blob.PutOptions{ContentType: "audio/mpeg"}); err != nil {
		return err
	}
	o.logf("intake of %d s of audio at %d Hz", a.SourceS, j.AudioRate)
	in, pcm, err := takeIn(ctx, bl, j, float64(a.SourceS))
	if err != nil {
		return err
	}
	a.Intake = in
	if err := j.WithAudioSamples(in.Samples); err != nil {
		return fmt.Errorf("audio bench: plan the job: %w", err)
	}
	a.Segments = j.Plan.Count()
	o.logf("%d segments; reading their audio", a.Segments)
	snd := dispatcher.Sound{AudioKey: string(pcm), AudioSamples: in.Samples}
	if a.Reads, err = readSegments(ctx, bl, j, jobID, snd, reads); err != nil {
		return err
	}
	a.TrackBytes = 4 * in.Samples
	a.BytesRatio = float64(a.Reads[0].Bytes) / float64(a.TrackBytes)
	o.logf("reading the whole track")
	if a.WholeReadMS, err = readWhole(ctx, bl, pcm, a.TrackBytes, 3); err != nil {
		return err
	}
	var slowest float64
	for _, r := range a.Reads {
		slowest = max(slowest, r.P50MS)
	}
	a.WholeOverSegment = a.WholeReadMS / slowest
	return nil
}
