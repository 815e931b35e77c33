package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/media"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Sound is what intake made of a job's audio and of a talking head's
// reference, for its segments and its stitch.
type Sound struct {
	// AudioKey holds the audio as the engines read it: AudioSamples mono
	// float32 little-endian samples at the job's AudioRate (media.PCMName).
	// ManifestKey is its media.AudioManifest (jobs.audio_key: the stitcher
	// finds the AAC beside it), PeaksKey its loudness envelope
	// (jobs.waveform_key). "" without audio.
	AudioKey, ManifestKey, PeaksKey string
	AudioSamples                    int64
	// ReferenceKey holds ReferenceFrames frames of the job's size, packed
	// RGB24: the avatar, fitted (and for a video resampled to the job's
	// fps). "" without a reference.
	ReferenceKey    string
	ReferenceFrames int
	// In a local render only (the oracle), the same in memory: the PCM,
	// the AAC track with its packets and index, the reference frames.
	PCM, AAC, AACIndex []byte
	Track              media.AACTrack
	Reference          []byte
}

// Apply gives task t of job j the job's audio and reference: their keys,
// the audio's rate and length, the reference's frame count.
func (s Sound) Apply(t *spoolv1.SegmentTask, j jobspec.Job) {
	if s.AudioKey != "" {
		t.AudioKey, t.AudioRate, t.AudioSamples = s.AudioKey, uint32(j.AudioRate), s.AudioSamples
	}
	if s.ReferenceKey != "" {
		t.ReferenceKey, t.ReferenceFrames = s.ReferenceKey, uint32(s.ReferenceFrames)
	}
}

// referenceManifest is written after a reference video's frames: its
// presence says they are all there, and it keeps their count.
type referenceManifest struct {
	Frames int `json:"frames"`
}

// AudioIntakeOptions is what media.IntakeAudio is asked for job j's audio;
// the dispatcher and the oracle share it.
func AudioIntakeOptions(j jobspec.Job) media.AudioIntakeOptions {
	return media.AudioIntakeOptions{Rate: j.AudioRate, MaxSeconds: jobspec.MaxAudioS}
}

// ReferenceIntakeOptions is what media.Intake is asked for job j's
// reference: an image's one frame, or every frame of a video at the job's
// fps (at most jobspec.MaxReferenceS seconds of them).
func ReferenceIntakeOptions(j jobspec.Job, video bool) media.IntakeOptions {
	fit := map[string]media.Fit{jobspec.FitCrop: media.FitCrop, jobspec.FitPad: media.FitPad, jobspec.FitScale: media.FitScale}[j.Fit]
	o := media.IntakeOptions{Width: j.Width, Height: j.Height, Fit: fit, Keep: 1, Image: true}
	if video {
		o.Image, o.Keep, o.FPS = false, 0, j.FPS
		o.MaxFrames = int64(jobspec.MaxReferenceS)*int64(j.FPS) + 1 // the last frame's time may round up
	}
	return o
}

// sound runs the intake of job j's audio and reference, or finds it done
// (by another job of the same upload and model rate, frame, fps and fit,
// or an earlier delivery): the audio decoded to PCM at the model's rate
// and encoded to AAC once, with its loudness envelope; the reference
// fitted to the frame. It re-plans a job that lasts as long as its audio
// with the exact sample count. refIsVideo says the reference is a video
// upload. Media problems are *jobspec.FieldError naming the field.
func (d *Dispatcher) sound(ctx context.Context, j *jobspec.Job, refIsVideo bool) (Sound, error) {
	var s Sound
	if j.Audio != "" {
		if err := d.audio(ctx, j, &s); err != nil {
			return Sound{}, err
		}
		if err := j.WithAudioSamples(s.AudioSamples); err != nil {
			return Sound{}, err
		}
	}
	if j.Reference != "" {
		if err := d.reference(ctx, j, refIsVideo, &s); err != nil {
			return Sound{}, err
		}
	}
	return s, nil
}

// audio finds or derives the audio's objects under
// uploads/<tenant>/<audio>/derived/audio-<rate>/.
func (d *Dispatcher) audio(ctx context.Context, j *jobspec.Job, s *Sound) error {
	variant := "audio-" + strconv.Itoa(j.AudioRate)
	keys := map[string]blob.Key{}
	for _, n := range []string{media.AudioManifestName, media.PCMName, media.AACName, media.AACIndexName, media.PeaksName} {
		k, err := blob.UploadDerived(j.Tenant, j.Audio, variant, n)
		if err != nil {
			return err
		}
		keys[n] = k
	}
	s.AudioKey, s.ManifestKey, s.PeaksKey = string(keys[media.PCMName]), string(keys[media.AudioManifestName]), string(keys[media.PeaksName])
	if raw, err := d.read(ctx, keys[media.AudioManifestName]); err == nil {
		var m media.AudioManifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("audio manifest %s: %w", keys[media.AudioManifestName], err)
		}
		s.AudioSamples = m.Samples
		return nil
	} else if !errors.Is(err, blob.ErrNotFound) {
		return err
	}
	file, err := d.downloadUpload(ctx, j.Tenant, j.Audio)
	if err != nil {
		return err
	}
	defer os.Remove(file)
	o := AudioIntakeOptions(*j)
	pcm := d.blob.NewWriter(ctx, keys[media.PCMName], blob.PutOptions{ContentType: "application/octet-stream"})
	aac := d.blob.NewWriter(ctx, keys[media.AACName], blob.PutOptions{ContentType: "audio/aac"})
	o.PCM, o.AAC = pcm, aac
	res, err := media.IntakeAudio(ctx, file, o)
	if err != nil {
		pcm.Abort(err)
		aac.Abort(err)
		if errors.Is(err, media.ErrIntake) {
			return &jobspec.FieldError{Code: jobspec.CodeInvalidArgument, Field: "audio", Value: strconv.Quote(j.Audio),
				Allowed: "an audio upload that decodes: " + err.Error()}
		}
		return err
	}
	if err := pcm.Close(); err != nil {
		aac.Abort(err)
		return err
	}
	if err := aac.Close(); err != nil {
		return err
	}
	for _, o := range []struct {
		name, ctype string
		data        []byte
	}{{media.AACIndexName, "application/octet-stream", res.Index}, {media.PeaksName, "application/octet-stream", res.Peaks}} {
		if _, err := d.blob.Put(ctx, keys[o.name], bytes.NewReader(o.data), int64(len(o.data)), blob.PutOptions{ContentType: o.ctype}); err != nil {
			return err
		}
	}
	raw, _ := json.Marshal(media.AudioManifest{Rate: j.AudioRate, Samples: res.Samples, Track: res.Track})
	if _, err := d.blob.Put(ctx, keys[media.AudioManifestName], bytes.NewReader(raw), int64(len(raw)),
		blob.PutOptions{ContentType: "application/json"}); err != nil {
		return err
	}
	s.AudioSamples = res.Samples
	return nil
}

// reference finds or derives the reference's frames: an image's as for
// image to video (…/<w>x<h>-<fit>/image.rgb), a video's every frame at the
// job's fps (…/<w>x<h>-<fps>fps-<fit>/reference.rgb, counted by
// reference.json).
func (d *Dispatcher) reference(ctx context.Context, j *jobspec.Job, video bool, s *Sound) error {
	variant, name := fmt.Sprintf("%dx%d-%s", j.Width, j.Height, j.Fit), "image.rgb"
	if video {
		variant, name = fmt.Sprintf("%dx%d-%dfps-%s", j.Width, j.Height, j.FPS, j.Fit), "reference.rgb"
	}
	key, err := blob.UploadDerived(j.Tenant, j.Reference, variant, name)
	if err != nil {
		return err
	}
	manifest, err := blob.UploadDerived(j.Tenant, j.Reference, variant, "reference.json")
	if err != nil {
		return err
	}
	frame := int64(j.Width) * int64(j.Height) * 3
	s.ReferenceKey = string(key)
	// Done before? An image is whole when its one frame is; a video when
	// its manifest is there and the frames agree with it.
	frames := 1
	if video {
		raw, err := d.read(ctx, manifest)
		if err == nil {
			var m referenceManifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("reference manifest %s: %w", manifest, err)
			}
			frames = m.Frames
		} else if !errors.Is(err, blob.ErrNotFound) {
			return err
		} else {
			frames = 0
		}
	}
	if frames > 0 {
		st, err := d.blob.Stat(ctx, key)
		if err == nil && st.Size == int64(frames)*frame {
			s.ReferenceFrames = frames
			return nil
		}
		if err != nil && !errors.Is(err, blob.ErrNotFound) {
			return err
		}
	}
	file, err := d.downloadUpload(ctx, j.Tenant, j.Reference)
	if err != nil {
		return err
	}
	defer os.Remove(file)
	o := ReferenceIntakeOptions(*j, video)
	w := d.blob.NewWriter(ctx, key, blob.PutOptions{ContentType: "application/octet-stream"})
	if video {
		o.Frames = w
	}
	res, err := media.Intake(ctx, file, o)
	if err == nil && !video {
		_, err = w.Write(res.Last)
	}
	if err != nil {
		w.Abort(err)
		if errors.Is(err, media.ErrIntake) {
			return &jobspec.FieldError{Code: jobspec.CodeInvalidArgument, Field: "reference", Value: strconv.Quote(j.Reference),
				Allowed: "an image or video upload that decodes: " + err.Error()}
		}
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	s.ReferenceFrames = int(res.Frames)
	if video {
		raw, _ := json.Marshal(referenceManifest{Frames: s.ReferenceFrames})
		if _, err := d.blob.Put(ctx, manifest, bytes.NewReader(raw), int64(len(raw)), blob.PutOptions{ContentType: "application/json"}); err != nil {
			return err
		}
	}
	return nil
}
