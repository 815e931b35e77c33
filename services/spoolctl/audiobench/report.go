package audiobench

import (
	"fmt"

	"github.com/spoolvideo/spool/libs/bench"
)

// Title is the table's title for a.
func (a Audio) Title() string {
	return fmt.Sprintf("audio (%d s of speech-like %s, %.1f MB; taken in for %s at %d Hz, 720p: %d segments)",
		a.SourceS, "MP3 64 kb/s stereo 44.1 kHz", a.SourceMB, a.Model, a.Rate, a.Segments)
}

// Rows is the table of a: the intake, the segment reads against the whole
// track's, and, when measured, the stitch without and with audio against
// their targets.
func (a Audio) Rows() []bench.Row {
	in := a.Intake
	rss := "MB, max over the children (ffmpeg)"
	if in.FFmpegRSSMax {
		rss = "MB at most: a larger child ran before the intake"
	}
	rows := []bench.Row{
		bench.Fig("intake", in.Seconds, 1, "s: download, one decode to PCM + AAC, both streamed into MinIO", ""),
		bench.Fig("  download", in.DownloadS, 2, "s, the upload from MinIO to a file", ""),
		bench.Fig("intake speed", in.XRealtime, 1, "× realtime", ""),
		bench.Fig("ffmpeg CPU", in.FFmpegCPUS, 1, fmt.Sprintf("s, user + sys (intake wall ÷ CPU %.2f)", in.Seconds/in.FFmpegCPUS), ""),
		bench.Fig("ffmpeg peak RSS", in.FFmpegRSSMB, 1, rss, ""),
		bench.Fig("Go peak RSS", in.GoRSSMB, 1, fmt.Sprintf("MB, this process over the intake (%.1f before)", in.GoIdleRSSMB), ""),
		{Figure: "PCM / AAC", Value: fmt.Sprintf("%.1f / %.1f", in.PCMMB, in.AACMB), Unit: "MB stored"},
	}
	for _, r := range a.Reads {
		rows = append(rows, bench.Row{Figure: "segment read, " + r.At, Value: fmt.Sprintf("%.2f / %.2f", r.P50MS, r.MaxMS),
			Unit: fmt.Sprintf("ms p50 / max of %d: segment %d, %d frames, %d samples, %d kB", r.Reads, r.Index, r.Frames, r.Samples, r.Bytes/1000)})
	}
	rows = append(rows,
		bench.Fig("whole track read", a.WholeReadMS, 1, fmt.Sprintf("ms, all %.1f MB of PCM into memory (median of 3)", float64(a.TrackBytes)/(1<<20)), ""),
		bench.Row{Figure: "segment ÷ track bytes", Value: fmt.Sprintf("%.5f", a.BytesRatio), Unit: fmt.Sprintf("1/%.0f", 1/a.BytesRatio)},
		bench.Fig("whole ÷ segment read", a.WholeOverSegment, 1, "× the slowest p50", ""))
	if a.Stitch.Segments == 0 {
		return rows
	}
	pass := func(v, target float64, unit string) string {
		verdict := "PASS"
		if v > target {
			verdict = "FAIL"
		}
		return fmt.Sprintf("≤ %.0f %s: %s", target, unit, verdict)
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"no audio", a.Stitch.FinalizeMS}, {"with audio", a.StitchSound.FinalizeMS}} {
		rows = append(rows, bench.Fig("finalize, "+s.name, s.v, 1, "ms, last DONE → succeeded", pass(s.v, TargetFinalizeMS, "ms")))
	}
	rows = append(rows, bench.Fig("finalize with ÷ without", a.FinalizeRatio, 2, "", ""))
	for _, s := range []struct {
		name string
		v    float64
	}{{"no audio", a.Stitch.PeakRSSMB}, {"with audio", a.StitchSound.PeakRSSMB}} {
		rows = append(rows, bench.Fig("stitcher RSS, "+s.name, s.v, 1, "MB peak", pass(s.v, TargetPeakRSSMB, "MB")))
	}
	return append(rows, bench.Fig("RSS with ÷ without", a.RSSRatio, 2, "",
		fmt.Sprintf("%d s of 720p, %.1f MB of AAC", a.StitchSound.VideoS, a.StitchSound.AudioMB)))
}
