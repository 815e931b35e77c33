package jobspec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/plan"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// The kinds of upload (Upload.Kind).
const (
	KindImage = "image"
	KindVideo = "video"
	KindAudio = "audio"
)

// The fits of an input to the job's frame (Job.Fit).
const (
	FitCrop  = "crop"
	FitPad   = "pad"
	FitScale = "scale"
)

// Upload is what validation needs to know of an upload.
type Upload struct {
	ID, Tenant string
	// Kind is KindImage, KindVideo or KindAudio.
	Kind string
	// DurationS is a video's or an audio track's length in seconds.
	DurationS float64
}

// ErrNoUpload is what an Uploads returns for an upload that does not
// exist, or is another tenant's: the two are told apart nowhere.
var ErrNoUpload = errors.New("no such upload")

// Uploads looks up a tenant's uploads (the store does, in Postgres).
type Uploads interface {
	// Upload returns the ready upload id of tenant, or an error wrapping
	// ErrNoUpload.
	Upload(ctx context.Context, tenant, id string) (Upload, error)
}

// RoleReference is the role of a talking head's reference (its avatar):
// an image or a video upload.
const RoleReference = "reference"

// Input is a media input of a job: the upload id and its role, which is
// also the spec's field ("image", "video", "audio" or "reference").
type Input struct {
	Role, UploadID string
}

// Inputs lists the job's media inputs, in field order.
func (j Job) Inputs() []Input {
	var out []Input
	for _, in := range []Input{{KindImage, j.Image}, {KindVideo, j.Video}, {KindAudio, j.Audio}, {RoleReference, j.Reference}} {
		if in.UploadID != "" {
			out = append(out, in)
		}
	}
	return out
}

var fits = map[spoolv1.Fit]string{
	spoolv1.Fit_FIT_UNSPECIFIED: FitCrop, spoolv1.Fit_FIT_CROP: FitCrop, spoolv1.Fit_FIT_PAD: FitPad, spoolv1.Fit_FIT_SCALE: FitScale,
}

// checkMedia checks what can be checked of the media fields without
// looking the uploads up: the ids' form and the combinations allowed.
func checkMedia(spec *spoolv1.JobSpec, cat Catalog, j *Job) error {
	j.Image, j.Video, j.Audio, j.IncludeInput = spec.GetImage(), spec.GetVideo(), spec.GetAudio(), spec.GetIncludeInput()
	j.Reference = spec.GetReference()
	m := cat.Models[j.Model]
	for _, f := range []struct{ field, id string }{{"image", j.Image}, {"video", j.Video}, {"audio", j.Audio}, {"reference", j.Reference}} {
		if f.id != "" && blob.ValidateUploadID(f.id) != nil {
			return fieldErr(f.field, f.id, "the id of an upload (POST /uploads): \"up-\" then 1..61 of a-z and 0-9")
		}
	}
	fit, ok := fits[spec.GetFit()]
	switch {
	case !ok:
		return fieldErr("fit", spec.GetFit(), "FIT_CROP, FIT_PAD or FIT_SCALE; unset means FIT_CROP")
	case spec.GetFit() != spoolv1.Fit_FIT_UNSPECIFIED && j.Image == "" && j.Video == "" && j.Reference == "":
		return fieldErr("fit", spec.GetFit(), "unset unless image, video or reference is given: it says how they fit the frame")
	case j.Video != "" && j.Image != "":
		return fieldErr("video", j.Video, "empty when image is set: a job starts from an image or extends a video, not both")
	case j.Video != "" && j.Mode != plan.Chain:
		return fieldErr("video", j.Video, "empty in independent mode: extending a video is chain mode only (MODE_CHAIN), "+
			"each new window conditioned on the frames before it, starting from the video's last overlap_frames")
	case j.Video != "" && j.Live:
		return fieldErr("video", j.Video, "empty for a live job: an extension has a duration")
	case j.IncludeInput && j.Video == "":
		return fieldErr("include_input", true, "false unless video is given: it keeps the input video at the start of the output")
	case j.Audio != "" && m.AudioSampleRate == 0:
		return fieldErr("audio", j.Audio, "empty for model "+j.Model+", which takes no audio (no audio_sample_rate in the catalog; "+
			"talking-head models: "+cat.talkingHeads()+")")
	case j.Audio != "" && j.Live:
		return fieldErr("audio", j.Audio, "empty for a live job: an audio track has an end, a live job none")
	case m.TalkingHead && j.Audio == "":
		return fieldErr("audio", "", "the id of an audio upload: model "+j.Model+" is a talking head, which speaks it")
	case m.TalkingHead && j.Reference == "":
		return fieldErr("reference", "", "the id of an image or video upload: model "+j.Model+" is a talking head, which animates it")
	case !m.TalkingHead && j.Reference != "":
		return fieldErr("reference", j.Reference, "empty for model "+j.Model+", which is not a talking head (talking-head models: "+cat.talkingHeads()+")")
	case j.Reference != "" && j.Image != "":
		return fieldErr("image", j.Image, "empty for a talking head: its reference is the avatar")
	case j.Reference != "" && j.Video != "":
		return fieldErr("video", j.Video, "empty for a talking head: its reference is the avatar")
	}
	if j.Image != "" || j.Video != "" || j.Reference != "" {
		j.Fit = fit
	}
	if j.Audio != "" {
		j.AudioRate = m.AudioSampleRate
	}
	return nil
}

// talkingHeads lists the catalog's talking-head models, or says there is
// none.
func (c Catalog) talkingHeads() string {
	var out []string
	for _, name := range c.Names() {
		if c.Models[name].TalkingHead {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return "none in this catalog"
	}
	return strings.Join(out, ", ")
}

// CheckInputs looks up the job's uploads: each must exist, be the job's
// tenant's, be of its field's kind and fit the job (a video lasts at most
// MaxDurationS and gives at least overlap_frames frames at the job's fps;
// an audio track lasts at most MaxAudioS and at least the job's duration;
// a reference video at most MaxReferenceS). A job that lasts as long as
// its audio is planned here from the upload's probed length, which intake
// corrects to the decoded samples (WithAudioSamples). A failure is a
// *FieldError naming the field; a lookup that fails for another reason
// (the store is down) is returned as it is.
func CheckInputs(ctx context.Context, j *Job, ups Uploads) ([]Upload, error) {
	var out []Upload
	for _, in := range j.Inputs() {
		u, err := ups.Upload(ctx, j.Tenant, in.UploadID)
		switch {
		case errors.Is(err, ErrNoUpload):
			why, _ := strings.CutPrefix(err.Error(), ErrNoUpload.Error()+": ")
			if why == err.Error() {
				why = "there is none with this id"
			}
			return nil, fieldErr(in.Role, in.UploadID, fmt.Sprintf("a ready upload of tenant %s (POST /uploads); %s", j.Tenant, why))
		case err != nil:
			return nil, fmt.Errorf("look up upload %s: %w", in.UploadID, err)
		case in.Role == RoleReference && u.Kind != KindImage && u.Kind != KindVideo:
			return nil, fieldErr(in.Role, in.UploadID, fmt.Sprintf("an image or video upload; %s is %s %s upload", in.UploadID, article(u.Kind), u.Kind))
		case in.Role == RoleReference && u.Kind == KindVideo && u.DurationS > MaxReferenceS:
			return nil, fieldErr(in.Role, in.UploadID, fmt.Sprintf("an image, or a video of at most %d s (a template the job loops); it lasts %.2f s",
				MaxReferenceS, u.DurationS))
		case in.Role != RoleReference && u.Kind != in.Role:
			return nil, fieldErr(in.Role, in.UploadID, fmt.Sprintf("an upload of kind %s; %s is %s %s upload", in.Role, in.UploadID, article(u.Kind), u.Kind))
		}
		if in.Role == KindAudio {
			if u.DurationS > MaxAudioS {
				return nil, fieldErr("audio", in.UploadID, fmt.Sprintf("an audio track of at most %d s; it lasts %.1f s", MaxAudioS, u.DurationS))
			}
			// The probe gives the container's length; a decoder's differs
			// from it by an encoder's delay and padding (tens of ms, more
			// for some MP3s). A duration within AudioProbeSlackS past it
			// is left to intake, which counts the decoded samples.
			n := int64(math.Round(u.DurationS * float64(j.AudioRate)))
			slack := n + int64(AudioProbeSlackS*float64(j.AudioRate))
			if !j.AudioLength && j.TotalFrames > plan.FramesOfSamples(n, j.FPS, j.AudioRate) &&
				j.TotalFrames <= plan.FramesOfSamples(slack, j.FPS, j.AudioRate) {
				n = slack
			}
			if err := j.WithAudioSamples(n); err != nil {
				return nil, err
			}
			j.AudioSamples = 0 // known exactly only after intake
		}
		if in.Role == KindVideo {
			frames := int64(math.Round(u.DurationS * float64(j.FPS)))
			switch {
			case u.DurationS > MaxDurationS:
				return nil, fieldErr("video", in.UploadID, fmt.Sprintf("a video of at most %d s; it lasts %.1f s", MaxDurationS, u.DurationS))
			case frames < int64(j.Overlap):
				return nil, fieldErr("video", in.UploadID, fmt.Sprintf("a video of at least overlap_frames (%d) frames at %d fps; it lasts %.3f s (%s)",
					j.Overlap, j.FPS, u.DurationS, plural(frames, "frame")))
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// WithInputFrames re-plans an extension once intake has counted its input
// video's frames at the job's fps: with include_input the new frames start
// after them, else at frame 0. It refuses a video shorter than the
// overlap, which conditions segment 0.
func (j *Job) WithInputFrames(n int64) error {
	if j.Video == "" {
		return fmt.Errorf("jobspec: input frames of a job that extends no video")
	}
	if n < int64(j.Overlap) {
		return fieldErr("video", j.Video, fmt.Sprintf("a video of at least overlap_frames (%d) frames at %d fps; it gives %d", j.Overlap, j.FPS, n))
	}
	if j.IncludeInput {
		j.InputFrames = n
	}
	p, err := plan.New(j.PlanSpec())
	if err != nil {
		return fmt.Errorf("jobspec: re-plan with %d input frames: %w", n, err)
	}
	j.Plan = p
	return nil
}

// WithAudioSamples records that the job's audio decodes to n samples at
// AudioRate. A job that lasts as long as its audio gets
// plan.FramesOfSamples(n) frames and is planned; a job with a duration is
// refused (a *FieldError on its duration field) when it lasts longer than
// the audio by more than half a frame, and plays the audio's first
// duration only otherwise.
func (j *Job) WithAudioSamples(n int64) error {
	if j.Audio == "" || j.AudioRate < 1 {
		return fmt.Errorf("jobspec: audio samples of a job without audio")
	}
	if n < 1 {
		return fieldErr("audio", j.Audio, "an audio track of at least one sample at "+strconv.Itoa(j.AudioRate)+" Hz; it decodes to none")
	}
	frames := plan.FramesOfSamples(n, j.FPS, j.AudioRate)
	secs := float64(n) / float64(j.AudioRate)
	if !j.AudioLength && j.TotalFrames > frames {
		return fieldErr(j.DurationField, fmt.Sprintf("%.3f s (%s)", float64(j.TotalFrames)/float64(j.FPS), plural(j.TotalFrames, "frame")),
			fmt.Sprintf("at most the audio's length, %.3f s (%s at %d fps), or unset to take it; a job cannot be longer than its audio",
				secs, plural(frames, "frame"), j.FPS))
	}
	j.AudioSamples = n
	if !j.AudioLength {
		return nil
	}
	j.TotalFrames = frames
	p, err := plan.New(j.PlanSpec())
	var cue *plan.CueError
	switch {
	case errors.As(err, &cue):
		fe := cueErr(float64(j.Timeline[cue.Cue].FromFrame)/float64(j.FPS), j.FPS, cue)
		fe.Allowed += fmt.Sprintf(", which lasts as long as its audio: %.3f s (%s)", secs, plural(frames, "frame"))
		return fe
	case err != nil:
		return fmt.Errorf("jobspec: plan %s of audio: %w", plural(frames, "frame"), err)
	}
	j.Plan = p
	return nil
}

// plural is "1 frame", "2 frames".
func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

func article(kind string) string {
	if kind == KindImage || kind == KindAudio {
		return "an"
	}
	return "a"
}
