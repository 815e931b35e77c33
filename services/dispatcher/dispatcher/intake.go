package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
)

// Inputs is what intake made of a job's media for its segments and its
// stitch.
type Inputs struct {
	// Prefix holds segment 0's prefix frames (packed RGB24 of the job's
	// frame), PrefixFrames of them: the image, or the input video's last
	// overlap frames; in a local render only (the workers read PrefixKey).
	Prefix       []byte
	PrefixFrames int
	// PrefixKey is where Prefix is stored; "" in a local render.
	PrefixKey string
	// InputKey holds the input video re-encoded with the workers' codec in
	// fragments of at most the plan's longest piece (include_input);
	// InputFrames counts its frames. "" and 0 otherwise.
	InputKey    string
	InputFrames int64
	// Input is that re-encoding itself, in a local render only.
	Input []byte
	// Sound is the job's audio and a talking head's reference.
	Sound Sound
}

// IntakeOptions are the media part of intake: what media.Intake is asked
// for an image or a video of job j. The oracle and the dispatcher share it.
func IntakeOptions(j jobspec.Job, codec media.Codec) media.IntakeOptions {
	fit := map[string]media.Fit{jobspec.FitCrop: media.FitCrop, jobspec.FitPad: media.FitPad, jobspec.FitScale: media.FitScale}[j.Fit]
	o := media.IntakeOptions{Width: j.Width, Height: j.Height, Fit: fit, Keep: 1, Image: j.Image != ""}
	if j.Video != "" {
		o.FPS, o.Keep, o.Image = j.FPS, j.Overlap, false
		o.MaxFrames = int64(jobspec.MaxDurationS) * int64(j.FPS)
		if j.IncludeInput {
			o.Codec, o.FragmentFrames = codec, j.Plan.LongestPiece()
		}
	}
	return o
}

// InputsOf is what media.Intake's result gives job j's segments: the
// prefix frames it kept and, for a video, the frames it counted.
func InputsOf(j jobspec.Job, res media.IntakeResult) Inputs {
	in := Inputs{Prefix: res.Last, PrefixFrames: len(res.Last) / (j.Width * j.Height * 3)}
	if j.Video != "" {
		in.InputFrames = res.Frames
	}
	return in
}

// intakeManifest is written last among a video's derived objects: its
// presence says they are all there, and it keeps the frame count.
type intakeManifest struct {
	Frames int64 `json:"frames"`
}

// intake derives what job j's segments need from its uploads, or finds it
// already derived (by another job with the same frame, fps, fit and
// overlap, or by an earlier delivery of this submission): the image fitted
// to the frame; the video fitted, resampled to the job's fps, its last
// overlap frames, and with include_input the whole of it re-encoded with
// the workers' codec. It re-plans an extension with the input's frame
// count. A problem with the media itself is a *jobspec.FieldError naming
// the field; anything else (the store is down) is returned as it is, to be
// retried. Derived objects lie under the upload's prefix: the same bytes
// on every run, so racing dispatchers write the same objects.
func (d *Dispatcher) intake(ctx context.Context, j *jobspec.Job, codec media.Codec) (Inputs, error) {
	if j.Image == "" && j.Video == "" {
		return Inputs{}, nil
	}
	field, id := "image", j.Image
	if j.Video != "" {
		field, id = "video", j.Video
	}
	o := IntakeOptions(*j, codec)
	variant := fmt.Sprintf("%dx%d-%s", j.Width, j.Height, j.Fit)
	names := []string{"image.rgb"}
	if j.Video != "" {
		variant = fmt.Sprintf("%dx%d-%dfps-%s", j.Width, j.Height, j.FPS, j.Fit)
		names = []string{"last-" + strconv.Itoa(o.Keep) + ".rgb"}
		if o.FragmentFrames > 0 {
			names = append(names, "video-"+strconv.Itoa(o.FragmentFrames)+"-"+codecTag(codec)+".mp4")
		}
		names = append(names, "intake-"+strconv.Itoa(o.Keep)+"-"+strconv.Itoa(o.FragmentFrames)+".json")
	}
	keys := make([]blob.Key, len(names))
	for i, n := range names {
		k, err := blob.UploadDerived(j.Tenant, id, variant, n)
		if err != nil {
			return Inputs{}, err
		}
		keys[i] = k
	}
	in, err := d.derived(ctx, j, keys)
	if err != nil {
		if in, err = d.derive(ctx, j, id, o, keys); err != nil {
			var fe *jobspec.FieldError
			if errors.As(err, &fe) || !errors.Is(err, media.ErrIntake) {
				return Inputs{}, err
			}
			return Inputs{}, &jobspec.FieldError{Code: jobspec.CodeInvalidArgument, Field: field, Value: strconv.Quote(id),
				Allowed: "an upload that decodes: " + err.Error()}
		}
	}
	if j.Video != "" {
		if err := j.WithInputFrames(in.InputFrames); err != nil {
			return Inputs{}, err
		}
		if !j.IncludeInput {
			in.InputKey, in.InputFrames = "", 0
		}
	}
	return in, nil
}

// codecTag names the codec parameters in a derived key, so that workers
// with other parameters never share a re-encoding.
func codecTag(c media.Codec) string {
	return fmt.Sprintf("%s.%s.crf%d.%s.t%d", c.Name, c.Preset, c.CRF, c.PixFmt, c.Threads)
}

// derived finds what an earlier intake stored under keys, without reading
// the frames (the workers do): an error when it is not all there.
func (d *Dispatcher) derived(ctx context.Context, j *jobspec.Job, keys []blob.Key) (Inputs, error) {
	in := Inputs{PrefixKey: string(keys[0]), PrefixFrames: 1}
	if j.Video != "" {
		raw, err := d.read(ctx, keys[len(keys)-1])
		if err != nil {
			return Inputs{}, err
		}
		var m intakeManifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return Inputs{}, fmt.Errorf("intake manifest %s: %w", keys[len(keys)-1], err)
		}
		in.InputFrames, in.PrefixFrames = m.Frames, j.Overlap
		if len(keys) == 3 {
			in.InputKey = string(keys[1])
		}
	}
	st, err := d.blob.Stat(ctx, keys[0])
	if err != nil {
		return Inputs{}, err
	}
	if want := int64(in.PrefixFrames) * int64(j.Width) * int64(j.Height) * 3; st.Size != want {
		return Inputs{}, fmt.Errorf("intake: %s holds %d bytes, want %d frames of %dx%d", keys[0], st.Size, in.PrefixFrames, j.Width, j.Height)
	}
	return in, nil
}

// downloadUpload copies the source of upload id of tenant into a new
// temporary file and returns its path; remove it when done.
func (d *Dispatcher) downloadUpload(ctx context.Context, tenant, id string) (string, error) {
	src, err := blob.UploadSource(tenant, id)
	if err != nil {
		return "", err
	}
	return d.download(ctx, src)
}

// download copies key into a new temporary file and returns its path.
func (d *Dispatcher) download(ctx context.Context, key blob.Key) (string, error) {
	r, _, err := d.blob.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer r.Close()
	f, err := os.CreateTemp("", "spool-intake-*")
	if err != nil {
		return "", fmt.Errorf("intake: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("intake: download %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("intake: %w", err)
	}
	return f.Name(), nil
}

func (d *Dispatcher) read(ctx context.Context, key blob.Key) ([]byte, error) {
	r, _, err := d.blob.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// derive runs media.Intake on the upload and stores what it made: the
// re-encoding streams to the store as ffmpeg writes it; the manifest goes
// last. The upload is first copied to a temporary file, so that a failure
// to read it (the store is down) is told apart from media ffmpeg cannot
// decode: only the latter is the job's fault.
func (d *Dispatcher) derive(ctx context.Context, j *jobspec.Job, id string, o media.IntakeOptions, keys []blob.Key) (Inputs, error) {
	file, err := d.downloadUpload(ctx, j.Tenant, id)
	if err != nil {
		return Inputs{}, err
	}
	defer os.Remove(file)
	var w *blob.Writer
	if o.FragmentFrames > 0 {
		w = d.blob.NewWriter(ctx, keys[1], blob.PutOptions{ContentType: "video/mp4"})
		o.Encode = w
	}
	res, err := media.Intake(ctx, file, o)
	if w != nil {
		if err != nil {
			w.Abort(err)
		} else if err = w.Close(); err != nil {
			return Inputs{}, err
		}
	}
	if err != nil {
		return Inputs{}, err
	}
	if _, err := d.blob.Put(ctx, keys[0], bytes.NewReader(res.Last), int64(len(res.Last)), blob.PutOptions{ContentType: "application/octet-stream"}); err != nil {
		return Inputs{}, err
	}
	in := InputsOf(*j, res)
	in.Prefix, in.PrefixKey = nil, string(keys[0])
	if j.Video != "" {
		if o.FragmentFrames > 0 {
			in.InputKey = string(keys[1])
		}
		raw, _ := json.Marshal(intakeManifest{Frames: res.Frames})
		if _, err := d.blob.Put(ctx, keys[len(keys)-1], bytes.NewReader(raw), int64(len(raw)), blob.PutOptions{ContentType: "application/json"}); err != nil {
			return Inputs{}, err
		}
	}
	return in, nil
}

// mediaOf checks a validated job's uploads and runs their intake, calling
// progress every five seconds meanwhile (a long video takes a while to
// re-encode): it tells JetStream, or the submission's claim in Postgres,
// that the admission goes on.
func (d *Dispatcher) mediaOf(ctx context.Context, progress func(), j *jobspec.Job) (Inputs, error) {
	inputs := j.Inputs()
	if len(inputs) == 0 {
		return Inputs{}, nil
	}
	if d.blob == nil { // refused, not retried: no delivery would fare better
		return Inputs{}, &jobspec.FieldError{Code: "unavailable", Field: inputs[0].Role, Value: strconv.Quote(inputs[0].UploadID),
			Allowed: "media inputs on a dispatcher with an object store (SPOOL_S3_*); this one has none"}
	}
	ups, err := jobspec.CheckInputs(ctx, j, d.store)
	if err != nil {
		return Inputs{}, err
	}
	refIsVideo := false
	for _, u := range ups {
		if u.ID == j.Reference && u.Kind == jobspec.KindVideo {
			refIsVideo = true
		}
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				progress()
			}
		}
	}()
	in, err := d.intake(ctx, j, d.codec)
	if err != nil {
		return Inputs{}, err
	}
	if in.Sound, err = d.sound(ctx, j, refIsVideo); err != nil {
		return Inputs{}, err
	}
	return in, nil
}

// jobInputs are the job_inputs rows of j.
func jobInputs(j jobspec.Job) []store.JobInput {
	var out []store.JobInput
	for _, in := range j.Inputs() {
		out = append(out, store.JobInput{Role: in.Role, UploadID: in.UploadID})
	}
	return out
}
