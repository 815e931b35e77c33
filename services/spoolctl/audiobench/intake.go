package audiobench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
)

// Intake is the intake of the source, as the dispatcher runs it.
type Intake struct {
	Seconds      float64 `json:"s"`            // download, intake, stores
	DownloadS    float64 `json:"download_s"`   // of the upload, to a temporary file
	XRealtime    float64 `json:"x_realtime"`   // the audio's length ÷ Seconds
	FFmpegCPUS   float64 `json:"ffmpeg_cpu_s"` // user + system of ffprobe and ffmpeg
	FFmpegRSSMB  float64 `json:"ffmpeg_peak_rss_mb"`
	FFmpegRSSMax bool    `json:"ffmpeg_peak_rss_is_bound,omitempty"` // a larger child ran before: FFmpegRSSMB bounds it
	GoRSSMB      float64 `json:"go_peak_rss_mb"`                     // this process over the intake
	GoIdleRSSMB  float64 `json:"go_idle_rss_mb"`                     // this process before it
	Samples      int64   `json:"samples"`
	PCMMB        float64 `json:"pcm_mb"`
	AACMB        float64 `json:"aac_mb"`
}

// takeIn runs job j's audio intake as the dispatcher's does
// (dispatcher/sound.go): the upload downloaded from MinIO to a temporary
// file, media.IntakeAudio of it with the dispatcher's options,
// the PCM and the AAC streamed into MinIO through blob writers as ffmpeg
// makes them, then the index, the peaks and the manifest (last) put. It
// returns its figures and the PCM's key. This process's peak RSS is reset
// before it (clear_refs), and the children's (ffprobe's and ffmpeg's) read
// from getrusage.
func takeIn(ctx context.Context, bl *blob.Store, j jobspec.Job, audioS float64) (Intake, blob.Key, error) {
	variant := "audio-" + strconv.Itoa(j.AudioRate)
	keys := map[string]blob.Key{}
	for _, n := range []string{media.AudioManifestName, media.PCMName, media.AACName, media.AACIndexName, media.PeaksName} {
		k, err := blob.UploadDerived(j.Tenant, j.Audio, variant, n)
		if err != nil {
			return Intake{}, "", err
		}
		keys[n] = k
	}
	debug.FreeOSMemory()
	var in Intake
	var err error
	if in.GoIdleRSSMB, err = status("self", "VmRSS:"); err != nil {
		return Intake{}, "", err
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil { // resets VmHWM
		return Intake{}, "", fmt.Errorf("audio bench: reset the peak RSS: %w", err)
	}
	var before, after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before); err != nil {
		return Intake{}, "", fmt.Errorf("audio bench: getrusage: %w", err)
	}
	start := time.Now()
	src, err := blob.UploadSource(j.Tenant, j.Audio)
	if err != nil {
		return Intake{}, "", err
	}
	file, err := download(ctx, bl, src)
	if err != nil {
		return Intake{}, "", err
	}
	defer func() { _ = os.Remove(file) }()
	in.DownloadS = time.Since(start).Seconds()
	o := dispatcher.AudioIntakeOptions(j)
	pcm := bl.NewWriter(ctx, keys[media.PCMName], blob.PutOptions{ContentType: "application/octet-stream"})
	aac := bl.NewWriter(ctx, keys[media.AACName], blob.PutOptions{ContentType: "audio/aac"})
	o.PCM, o.AAC = pcm, aac
	res, err := media.IntakeAudio(ctx, file, o)
	if err != nil {
		pcm.Abort(err)
		aac.Abort(err)
		return Intake{}, "", fmt.Errorf("audio bench: %w", err)
	}
	if err := pcm.Close(); err != nil {
		aac.Abort(err)
		return Intake{}, "", err
	}
	if err := aac.Close(); err != nil {
		return Intake{}, "", err
	}
	manifest, err := json.Marshal(media.AudioManifest{Rate: j.AudioRate, Samples: res.Samples, Track: res.Track})
	if err != nil {
		return Intake{}, "", err
	}
	for _, p := range []struct {
		name, ctype string
		data        []byte
	}{{media.AACIndexName, "application/octet-stream", res.Index}, {media.PeaksName, "application/octet-stream", res.Peaks},
		{media.AudioManifestName, "application/json", manifest}} {
		if _, err := bl.Put(ctx, keys[p.name], bytes.NewReader(p.data), int64(len(p.data)), blob.PutOptions{ContentType: p.ctype}); err != nil {
			return Intake{}, "", err
		}
	}
	wall := time.Since(start)
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after); err != nil {
		return Intake{}, "", fmt.Errorf("audio bench: getrusage: %w", err)
	}
	if in.GoRSSMB, err = status("self", "VmHWM:"); err != nil {
		return Intake{}, "", err
	}
	cpu := func(r syscall.Rusage) time.Duration { return time.Duration(r.Utime.Nano() + r.Stime.Nano()) }
	in.Seconds, in.XRealtime = wall.Seconds(), audioS/wall.Seconds()
	in.FFmpegCPUS = (cpu(after) - cpu(before)).Seconds()
	// ru_maxrss of the children is the largest of any waited for so far,
	// in kB: the intake's ffmpeg when it grew during the intake.
	in.FFmpegRSSMB, in.FFmpegRSSMax = float64(after.Maxrss)/1024, after.Maxrss <= before.Maxrss
	in.Samples = res.Samples
	in.PCMMB, in.AACMB = float64(pcm.Info().Size)/(1<<20), float64(aac.Info().Size)/(1<<20)
	if pcm.Info().Size != 4*res.Samples {
		return Intake{}, "", fmt.Errorf("audio bench: the PCM holds %d bytes for %d samples", pcm.Info().Size, res.Samples)
	}
	return in, keys[media.PCMName], nil
}

// download copies an object into a temporary file, as the dispatcher's
// intake does.
func download(ctx context.Context, bl *blob.Store, key blob.Key) (string, error) {
	r, _, err := bl.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer func() { _ = r.Close() }()
	f, err := os.CreateTemp("", "spool-audio-bench-*")
	if err != nil {
		return "", fmt.Errorf("audio bench: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("audio bench: download %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("audio bench: %w", err)
	}
	return f.Name(), nil
}

// status reads a field of /proc/<pid>/status (VmRSS, VmHWM), in MB.
func status(pid, field string) (float64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0, fmt.Errorf("audio bench: %s: %w", field, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("audio bench: %s %q: %w", field, rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("audio bench: no %s in /proc/%s/status", field, pid)
}
