// Package render is the oracle (DESIGN §10): it plans and renders a job in
// one process, with no NATS, Postgres or MinIO, making every fragment the
// way a worker does and joining them the way the stitcher does. The
// distributed system's output must decode to the same frames, whatever the
// schedule, retries or crashes.
package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/spoolvideo/spool/libs/infer"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/media"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
	"github.com/spoolvideo/spool/services/dispatcher/dispatcher"
	"github.com/spoolvideo/spool/services/worker/worker"
)

// Options set up the engine and codec; they must match the workers'. The
// spec's model, from the catalog, chooses the backend.
type Options struct {
	Params     string // backend parameters added to the catalog's, as SPOOL_WORKER_BACKEND_PARAMS
	PluginDir  string
	WeightsDir string          // one model's weights, as SPOOL_WORKER_WEIGHTS_DIR
	ModelsDir  string          // a folder of weights per model, as SPOOL_WORKER_MODELS_DIR
	Codec      media.Codec     // H264 when zero
	Catalog    jobspec.Catalog // the shipped one when it has no models; its pools are ignored
	// Image, Video, Audio and Reference are files standing in for the
	// spec's image, video, audio and reference uploads (the same bytes give
	// the same frames and sound); a spec that names no upload in their
	// field gets a stand-in id, "up-local<field>". Each file is probed and
	// checked as the API checks an upload (jobspec.CheckInputs): a video
	// given as audio is refused here as there.
	Image, Video, Audio, Reference string
	// Progress, when set, is called after each segment.
	Progress func(done, total int)
}

// Result describes the rendered video.
type Result struct {
	Segments int
	Frames   int64
	Bytes    int64
}

// Render renders spec into out as a fragmented MP4.
func Render(ctx context.Context, spec *spoolv1.JobSpec, out io.Writer, o Options) (Result, error) {
	if o.Codec.Name == "" {
		o.Codec = media.H264()
	}
	if o.Catalog.Models == nil {
		o.Catalog = jobspec.DefaultCatalog()
	}
	o.Catalog.Pools = nil // the pool only says where a job runs, never what it looks like
	spec, err := withFiles(spec, o)
	if err != nil {
		return Result{}, err
	}
	job, err := jobspec.Validate(spec, o.Catalog)
	if err != nil {
		return Result{}, err
	}
	if job.Live {
		return Result{}, errors.New("render: a live job has no end to render")
	}
	ups, err := checkFiles(ctx, &job, o)
	if err != nil {
		return Result{}, err
	}
	in, err := intake(ctx, &job, o)
	if err != nil {
		return Result{}, err
	}
	if in.Sound, err = intakeAudio(ctx, &job, o); err != nil {
		return Result{}, err
	}
	if err := intakeReference(ctx, job, o, ups[job.Reference].Kind == jobspec.KindVideo, &in.Sound); err != nil {
		return Result{}, err
	}
	segs, err := job.Plan.All()
	if err != nil {
		return Result{}, err
	}
	// The job's model and no other, opened as a worker opens it.
	m := o.Catalog.Models[job.Model]
	engines, err := worker.OpenEngines(worker.Config{Params: o.Params, PluginDir: o.PluginDir, Weights: o.WeightsDir, ModelsDir: o.ModelsDir},
		[]jobspec.Model{m}, nil)
	if err != nil {
		return Result{}, fmt.Errorf("render: %w", err)
	}
	engine := engines[m.Name]
	defer engine.Close()
	id := job.ID
	if id == "" {
		id = "local"
	}
	r := &renderer{job: job, codec: o.Codec, out: out, seq: 1, sound: in.Sound}
	if err := r.input(in); err != nil {
		return Result{}, err
	}
	for i, s := range segs {
		t := dispatcher.Template(job, id, s, i == len(segs)-1)
		prefix := []byte(nil)
		if s.Index == 0 && in.PrefixFrames > 0 {
			t.PrefixFrames, prefix = uint32(in.PrefixFrames), in.Prefix
		}
		in.Sound.Apply(t, job)
		m, err := r.media(ctx, t, prefix)
		if err != nil {
			return Result{}, fmt.Errorf("render: segment %d: %w", i, err)
		}
		if err := r.segment(ctx, engine, t, m); err != nil {
			return Result{}, fmt.Errorf("render: segment %d: %w", i, err)
		}
		if o.Progress != nil {
			o.Progress(i+1, len(segs))
		}
	}
	if want := job.InputFrames + job.TotalFrames; r.frames != want {
		return Result{}, fmt.Errorf("render: %w: %d frames rendered, the plan has %d", media.ErrFrameMismatch, r.frames, want)
	}
	return Result{Segments: len(segs), Frames: r.frames, Bytes: r.bytes}, nil
}

type renderer struct {
	job      jobspec.Job
	codec    media.Codec
	out      io.Writer
	init     []byte           // segment 0's video init segment
	sound    dispatcher.Sound // the job's audio, in memory, when it has one (job.Audio)
	audioID  uint32           // the audio's track ID in the output
	cond     []byte           // the chain's tail state
	prevTail []byte           // independent mode: the last segment's trailing overlap
	seq      int
	frames   int64
	bytes    int64
}

// sink keeps a segment's frames as the worker does and its tail state.
type sink struct {
	task *spoolv1.SegmentTask
	enc  *media.Encoder
	tail []byte
	pack []byte
}

func (s *sink) Step(int, int) error { return nil }

func (s *sink) Tail(state []byte) error { s.tail = append([]byte(nil), state...); return nil }

func (s *sink) Frame(f infer.Frame) error {
	if !worker.Keeps(s.task, f.Index) {
		return nil
	}
	rgb := f.RGB
	if row := f.Width * 3; f.Stride != row {
		s.pack = s.pack[:0]
		for y := range f.Height {
			s.pack = append(s.pack, f.RGB[y*f.Stride:y*f.Stride+row]...)
		}
		rgb = s.pack
	}
	return s.enc.WriteFrame(rgb)
}

// segment renders one task into its fragments, then joins them as the
// stitcher does: chain by copy; independent with crossfaded overlaps.
func (r *renderer) segment(ctx context.Context, engine *infer.Engine, t *spoolv1.SegmentTask, m worker.Media) error {
	var enc bytes.Buffer
	e, err := media.NewEncoder(ctx, &enc, media.EncodeOptions{Width: int(t.Width), Height: int(t.Height), FPS: int(t.Fps),
		Codec: r.codec, Keyframes: worker.CrossfadeKeyframes(t)})
	if err != nil {
		return err
	}
	s := &sink{task: t, enc: e}
	if err := engine.Run(ctx, worker.Request(t, r.cond, m), s); err != nil {
		_ = e.Close()
		return err
	}
	if err := e.Close(); err != nil {
		return err
	}
	r.cond = s.tail
	c, err := media.Retime(enc.Bytes(), int(t.Fps), worker.KeptStart(t), t.Index+1)
	if err != nil {
		return err
	}
	init, frags, err := media.Fragments(append(c.Init, c.Media...))
	if err != nil {
		return err
	}
	if err := r.writeInit(init); err != nil {
		return err
	}
	kept := int(t.Frames - t.TrimFrames)
	var out []media.Fragment
	if t.Mode != spoolv1.Mode_MODE_INDEPENDENT {
		out = frags
	} else {
		lead, trail := int(t.Overlap), int(t.CrossfadeFrames)
		head, core, tail, err := media.SplitOverlaps(frags, t.FirstFrame, lead, trail, kept)
		if err != nil {
			return err
		}
		if t.Index == 0 || lead == 0 {
			out = append(out, head...)
		} else {
			blend, err := media.CrossfadeFragments(ctx, r.init, r.prevTail, media.Concat(head), media.CrossfadeOptions{
				Width: int(t.Width), Height: int(t.Height), FPS: int(t.Fps), Codec: r.codec, Start: t.FirstFrame})
			if err != nil {
				return err
			}
			out = append(out, blend...)
		}
		out = append(out, core...)
		if trail > 0 {
			r.prevTail = media.Concat(tail)
		} else {
			out = append(out, tail...)
		}
	}
	if err := r.append(out); err != nil {
		return err
	}
	return r.appendSound(t.Index == 0, out)
}

// writeInit writes the init segment once, before the first fragment: the
// video's, with the audio track muxed in for a job with sound.
func (r *renderer) writeInit(init []byte) error {
	if r.init != nil {
		return nil
	}
	r.init = init
	if r.job.Audio == "" {
		return r.write(init)
	}
	muxed, err := media.MuxInit(init, r.sound.Track)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if r.audioID, err = media.AudioTrackID(muxed); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return r.write(muxed)
}

// appendSound writes the audio fragment of a piece (a segment's
// fragments, first for segment 0) after its video, numbered on, as the
// stitcher does: media.PieceAudio cuts it for both.
func (r *renderer) appendSound(first bool, piece []media.Fragment) error {
	if r.job.Audio == "" || len(piece) == 0 {
		return nil
	}
	a, b := piece[0].Start, piece[0].Start
	for _, f := range piece {
		b += int64(f.Frames)
	}
	f, err := media.PieceAudio(r.sound.Track, r.audioID, uint32(r.seq), first, a, b, r.job.FPS,
		bytes.NewReader(r.sound.AACIndex), bytes.NewReader(r.sound.AAC))
	if err != nil || f == nil {
		return err
	}
	r.seq++
	return r.write(f)
}

// append writes fragments, numbered on from the last.
func (r *renderer) append(frags []media.Fragment) error {
	for _, f := range frags {
		b, err := media.Renumber(f.Data, uint32(r.seq))
		if err != nil {
			return err
		}
		r.seq++
		r.frames += int64(f.Frames)
		if err := r.write(b); err != nil {
			return err
		}
	}
	return nil
}

// input writes an extension's kept input video, as the stitcher does
// before the first segment: the intake's re-encoding, copied.
func (r *renderer) input(in dispatcher.Inputs) error {
	if in.InputFrames == 0 {
		return nil
	}
	init, frags, err := media.Fragments(in.Input)
	if err != nil {
		return fmt.Errorf("render: input video: %w", err)
	}
	if err := r.writeInit(init); err != nil {
		return err
	}
	return r.append(frags)
}

// withFiles gives the spec's image, video and audio fields an id when the files
// stand in for them and none is named, and refuses a named upload with no
// file.
func withFiles(spec *spoolv1.JobSpec, o Options) (*spoolv1.JobSpec, error) {
	spec = proto.Clone(spec).(*spoolv1.JobSpec)
	for _, f := range []struct {
		field, file string
		id          *string
	}{{"image", o.Image, &spec.Image}, {"video", o.Video, &spec.Video}, {"audio", o.Audio, &spec.Audio}, {"reference", o.Reference, &spec.Reference}} {
		switch {
		case f.file != "" && *f.id == "":
			*f.id = "up-local" + f.field
		case f.file == "" && *f.id != "":
			return nil, fmt.Errorf("render: the spec's %s is upload %s; give its file with -%s", f.field, *f.id, f.field)
		}
	}
	return spec, nil
}

// intake makes of the files what the dispatcher makes of the uploads, with
// the same options, so the frames are the same.
func intake(ctx context.Context, j *jobspec.Job, o Options) (dispatcher.Inputs, error) {
	file, field := o.Image, "image"
	if j.Video != "" {
		file, field = o.Video, "video"
	}
	if j.Image == "" && j.Video == "" {
		return dispatcher.Inputs{}, nil
	}
	mo := dispatcher.IntakeOptions(*j, o.Codec)
	var enc bytes.Buffer
	if mo.FragmentFrames > 0 {
		mo.Encode = &enc
	}
	res, err := media.Intake(ctx, file, mo)
	if err != nil {
		return dispatcher.Inputs{}, fmt.Errorf("render: %s %s: %w", field, file, err)
	}
	in := dispatcher.InputsOf(*j, res)
	if j.Video != "" {
		if err := j.WithInputFrames(in.InputFrames); err != nil {
			return dispatcher.Inputs{}, fmt.Errorf("render: %w", err)
		}
		if in.Input = enc.Bytes(); !j.IncludeInput {
			in.Input, in.InputFrames = nil, 0
		}
	}
	return in, nil
}

// intakeAudio makes of the audio file what the dispatcher's intake makes
// of the upload, with the same options (dispatcher.AudioIntakeOptions),
// in memory: the PCM the engines hear and the AAC track the output
// carries, its packets and their index; and the job's length in samples
// (which plans a job that lasts as long as its audio). Nothing for a job
// without audio.
func intakeAudio(ctx context.Context, j *jobspec.Job, o Options) (dispatcher.Sound, error) {
	if j.Audio == "" {
		return dispatcher.Sound{}, nil
	}
	var pcm, aac bytes.Buffer
	mo := dispatcher.AudioIntakeOptions(*j)
	mo.PCM, mo.AAC = &pcm, &aac
	res, err := media.IntakeAudio(ctx, o.Audio, mo)
	if err != nil {
		return dispatcher.Sound{}, fmt.Errorf("render: audio %s: %w", o.Audio, err)
	}
	if err := j.WithAudioSamples(res.Samples); err != nil {
		return dispatcher.Sound{}, fmt.Errorf("render: %w", err)
	}
	return dispatcher.Sound{AudioKey: localKey, AudioSamples: res.Samples, PCM: pcm.Bytes(), AAC: aac.Bytes(), AACIndex: res.Index,
		Track: res.Track}, nil
}

// files are the files standing in for a job's uploads, by upload id,
// probed as the gateway probes an upload.
type files map[string]jobspec.Upload

func (f files) Upload(_ context.Context, tenant, id string) (jobspec.Upload, error) {
	u, ok := f[id]
	if !ok {
		return jobspec.Upload{}, fmt.Errorf("%w: no file stands in for it", jobspec.ErrNoUpload)
	}
	u.Tenant = tenant
	return u, nil
}

// checkFiles probes the files of o that stand in for job j's uploads and
// checks them against the job as the dispatcher checks uploads; it returns
// what it found of them.
func checkFiles(ctx context.Context, j *jobspec.Job, o Options) (files, error) {
	byRole := map[string]string{jobspec.KindImage: o.Image, jobspec.KindVideo: o.Video, jobspec.KindAudio: o.Audio, jobspec.RoleReference: o.Reference}
	fs := files{}
	for _, in := range j.Inputs() {
		p, err := media.ProbeUpload(ctx, byRole[in.Role], media.UploadLimits{})
		if err != nil {
			return nil, fmt.Errorf("render: -%s %s: %w", in.Role, byRole[in.Role], err)
		}
		fs[in.UploadID] = jobspec.Upload{ID: in.UploadID, Kind: p.Kind, DurationS: p.DurationS}
	}
	if _, err := jobspec.CheckInputs(ctx, j, fs); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return fs, nil
}

// localKey stands in for the keys of the media a local render holds in
// memory.
const localKey = "local"

// intakeReference makes of the reference file what the dispatcher's
// intake makes of the upload (dispatcher.ReferenceIntakeOptions), in
// memory: an image's frame, or a video's every frame at the job's fps.
func intakeReference(ctx context.Context, j jobspec.Job, o Options, video bool, s *dispatcher.Sound) error {
	if j.Reference == "" {
		return nil
	}
	mo := dispatcher.ReferenceIntakeOptions(j, video)
	var frames bytes.Buffer
	if video {
		mo.Frames = &frames
	}
	res, err := media.Intake(ctx, o.Reference, mo)
	if err != nil {
		return fmt.Errorf("render: reference %s: %w", o.Reference, err)
	}
	s.Reference, s.ReferenceKey, s.ReferenceFrames = res.Last, localKey, int(res.Frames)
	if video {
		s.Reference = frames.Bytes()
	}
	return nil
}

// media reads what task t's engine gets besides its conditioning, as a
// worker does: the prefix, the segment's audio samples and its reference
// frames (worker.SegmentAudio and SegmentReference, from memory).
func (r *renderer) media(ctx context.Context, t *spoolv1.SegmentTask, prefix []byte) (worker.Media, error) {
	from := func(b []byte) worker.RangeReader {
		return func(_ context.Context, off, n int64) ([]byte, error) {
			if off < 0 || off+n > int64(len(b)) {
				return nil, fmt.Errorf("bytes [%d, %d) of %d: %w", off, off+n, len(b), io.ErrUnexpectedEOF)
			}
			return b[off : off+n], nil
		}
	}
	m := worker.Media{Prefix: prefix}
	var err error
	if m.Audio, err = worker.SegmentAudio(ctx, t, from(r.sound.PCM)); err != nil {
		return worker.Media{}, err
	}
	if m.Reference, err = worker.SegmentReference(ctx, t, from(r.sound.Reference)); err != nil {
		return worker.Media{}, err
	}
	return m, nil
}

func (r *renderer) write(b []byte) error {
	n, err := r.out.Write(b)
	r.bytes += int64(n)
	if err != nil {
		return fmt.Errorf("render: write: %w", err)
	}
	return nil
}
