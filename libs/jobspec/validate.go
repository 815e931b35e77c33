package jobspec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"

	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/plan"
)

// Job is a validated, normalised JobSpec: every default applied.
type Job struct {
	ID       string // the spec's id; "" when the submitter gave none
	Tenant   string
	Pool     string
	Model    string
	Priority int
	Mode     plan.Mode
	Live     bool
	// TotalFrames is the video's length in frames; 0 when Live.
	TotalFrames   int64
	FPS           int
	Width, Height int
	// Resolution names the model's resolution of Width×Height; "" for a
	// size the model accepts (AnySize) without listing it.
	Resolution string
	Window     int // frames per segment, aligned for the model
	Overlap    int // frames shared by neighbours, aligned for the model
	Align      int
	Steps      int
	Guidance   float32
	Seed       uint64
	Timeline   plan.Timeline
	// Media inputs, upload ids; "" when not given.
	Image, Video, Audio, Reference string
	// Fit is how an image, video or reference fits the frame: FitCrop,
	// FitPad or FitScale.
	Fit string
	// AudioRate is the model's audio sample rate, Hz, for a job with audio;
	// 0 otherwise.
	AudioRate int
	// AudioSamples is how many samples at AudioRate intake decoded from the
	// audio (WithAudioSamples); 0 until then and without audio.
	AudioSamples int64
	// AudioLength says the spec gave no duration: the job lasts as long as
	// its audio. Its TotalFrames and Plan are unknown (0 and nil) until
	// the audio's length is (CheckInputs, from the upload's probe, then
	// WithAudioSamples, exactly).
	AudioLength bool
	// DurationField is the spec's field that gave the duration,
	// "duration_s" or "duration_frames"; "" when none did.
	DurationField string
	// IncludeInput keeps an extension's input video at the start of the
	// output.
	IncludeInput bool
	// InputFrames is how many output frames, from frame 0, are the input
	// video's (include_input); the generated frames follow. Known after
	// intake (WithInputFrames); 0 until then and without include_input.
	InputFrames int64
	// LiveAheadS is how far, in seconds of video, a live job may be
	// generated ahead of its live edge; 0 for a bounded job.
	LiveAheadS float64
	// Plan enumerates the job's segments.
	Plan *plan.Plan
}

// presets are the names of the spec's resolutions in the catalog.
var presets = map[spoolv1.Resolution]string{
	spoolv1.Resolution_RESOLUTION_540P:  "540p",
	spoolv1.Resolution_RESOLUTION_720P:  "720p",
	spoolv1.Resolution_RESOLUTION_1080P: "1080p",
}

// Validate checks spec against the limits and the catalogue and returns the
// normalised job, or the first *FieldError found (in field order). The
// model is the spec's (DefaultModel when none) and must be in the catalog;
// with pools, it must be served by the spec's pool, or the job goes to the
// first pool that serves it. Unset fps, resolution, window, overlap, steps
// and guidance take the model's defaults, and a resolution must be one the
// model allows.
func Validate(spec *spoolv1.JobSpec, cat Catalog) (Job, error) {
	if spec == nil {
		return Job{}, fieldErr("spec", "null", "a JobSpec object")
	}
	j := Job{ID: spec.GetId(), Seed: spec.GetSeed()}
	if j.ID != "" && !ident.Valid(j.ID) {
		return Job{}, fieldErr("id", j.ID, nameAllowed)
	}
	steps := []func(*spoolv1.JobSpec, Catalog, *Job) error{
		checkNames, checkModel, checkFPS, checkSize, checkDuration, checkLiveAhead, checkWindow, checkMedia, checkQuality, checkPrompts,
	}
	for _, step := range steps {
		if err := step(spec, cat, &j); err != nil {
			return Job{}, err
		}
	}
	if j.AudioLength {
		return j, nil // planned once the audio's length is known
	}
	p, err := plan.New(j.PlanSpec())
	var cue *plan.CueError
	switch {
	case errors.As(err, &cue): // a cue with no segment boundary of its own
		return Job{}, cueErr(spec.GetTimeline()[cue.Cue].GetFromS(), j.FPS, cue)
	case err != nil: // unreachable when the checks above hold; kept as a guard
		return Job{}, fieldErr("window_frames", j.Window, err.Error())
	}
	j.Plan = p
	return j, nil
}

// PlanSpec is the planner's view of the job.
func (j Job) PlanSpec() plan.Spec {
	return plan.Spec{TotalFrames: j.TotalFrames, Live: j.Live, Window: j.Window, Overlap: j.Overlap,
		Align: j.Align, Mode: j.Mode, Seed: j.Seed, Timeline: j.Timeline, Start: j.InputFrames, Extend: j.Video != ""}
}

func checkNames(spec *spoolv1.JobSpec, _ Catalog, j *Job) error {
	j.Tenant = orDefault(spec.GetTenant(), DefaultTenant)
	if !ident.Valid(j.Tenant) {
		return fieldErr("tenant", j.Tenant, nameAllowed)
	}
	if p := spec.GetPool(); p != "" && !ident.Valid(p) {
		return fieldErr("pool", p, nameAllowed)
	}
	switch p := spec.GetPriority(); {
	case p == 0:
		j.Priority = DefaultPriority
	case p < MinPriority || p > MaxPriority:
		return fieldErr("priority", p, "1..9; 0 means 5")
	default:
		j.Priority = int(p)
	}
	switch spec.GetMode() {
	case spoolv1.Mode_MODE_UNSPECIFIED, spoolv1.Mode_MODE_CHAIN:
		j.Mode = plan.Chain
	case spoolv1.Mode_MODE_INDEPENDENT:
		j.Mode = plan.Independent
	default:
		return fieldErr("mode", spec.GetMode(), "MODE_CHAIN or MODE_INDEPENDENT")
	}
	return nil
}

// checkModel checks the model and routes the job to a pool serving it.
func checkModel(spec *spoolv1.JobSpec, cat Catalog, j *Job) error {
	j.Model = orDefault(spec.GetModel(), DefaultModel)
	if _, ok := cat.Models[j.Model]; !ok {
		return fieldErr("model", j.Model, "a model of the catalog: "+cat.modelNames())
	}
	j.Pool = spec.GetPool()
	if len(cat.Pools) == 0 { // no routing
		j.Pool = orDefault(j.Pool, DefaultPool)
		return nil
	}
	serving := cat.Pools.Serving(j.Model)
	if j.Pool == "" {
		if len(serving) == 0 {
			return fieldErr("model", j.Model, fmt.Sprintf("a model that a pool serves: %s (pools: %s)",
				strings.Join(cat.Pools.Served(), ", "), cat.Pools))
		}
		j.Pool = serving[0]
		return nil
	}
	p, ok := cat.Pools.Get(j.Pool)
	switch {
	case !ok:
		return fieldErr("pool", j.Pool, "one of: "+strings.Join(cat.Pools.Names(), ", "))
	case !p.Serves(j.Model):
		where := "no pool serves it"
		if len(serving) > 0 {
			where = "it is served by " + strings.Join(serving, ", ")
		}
		return fieldErr("pool", j.Pool, fmt.Sprintf("a pool that serves model %s (pool %s serves %s; %s)", j.Model, j.Pool,
			strings.Join(p.Models, ", "), where))
	}
	return nil
}

func checkFPS(spec *spoolv1.JobSpec, cat Catalog, j *Job) error {
	m := cat.Models[j.Model]
	j.FPS = m.FPS
	if f := spec.GetFps(); f != 0 {
		if f < MinFPS || f > MaxFPS {
			return fieldErr("fps", f, fmt.Sprintf("1..60; 0 means the model's %d", m.FPS))
		}
		j.FPS = int(f)
	}
	return nil
}

// checkSize picks the job's size: the spec's width and height, or the
// model's resolution the spec names, or the model's default resolution.
func checkSize(spec *spoolv1.JobSpec, cat Catalog, j *Job) error {
	m := cat.Models[j.Model]
	w, h := int(spec.GetWidth()), int(spec.GetHeight())
	res := spec.GetResolution()
	if (w == 0) != (h == 0) {
		field, v := "width", w
		if h == 0 {
			field, v = "height", h
		}
		return fieldErr(field, v, "set together with the other side, or both 0 to use resolution")
	}
	if w == 0 {
		r := m.Default()
		if res != spoolv1.Resolution_RESOLUTION_UNSPECIFIED {
			name, ok := presets[res]
			if !ok {
				return fieldErr("resolution", res, resolutionPreset+", one of model "+j.Model+"'s")
			}
			if r, ok = m.Resolution(name); !ok {
				return fieldErr("resolution", name, "a resolution of model "+j.Model+": "+m.resolutionsText())
			}
		}
		w, h = r.Width, r.Height
	}
	long, short, lf, sf := w, h, "width", "height"
	if h > w {
		long, short, lf, sf = h, w, "height", "width"
	}
	sides := "even, 64..1920 on the long side and 64..1080 on the short side"
	switch {
	case long%2 != 0 || long < MinSide || long > MaxLongSide:
		return fieldErr(lf, long, sides)
	case short%2 != 0 || short < MinSide || short > MaxShortSide:
		return fieldErr(sf, short, sides)
	}
	r, ok := m.windowFor(w, h)
	if !ok {
		return fieldErr("width", fmt.Sprintf("%dx%d", w, h), "a resolution of model "+j.Model+": "+m.resolutionsText())
	}
	if r.Width == w && r.Height == h {
		j.Resolution = r.Name
	}
	j.Width, j.Height = w, h
	j.Window, j.Overlap = r.Window, r.Overlap
	return nil
}

func checkDuration(spec *spoolv1.JobSpec, cat Catalog, j *Job) error {
	ds, df, live := spec.GetDurationS(), spec.GetDurationFrames(), spec.GetLive()
	switch {
	case live && (ds != 0 || df != 0):
		return fieldErr("live", true, "only with duration_s and duration_frames both 0")
	case live && spec.GetMode() == spoolv1.Mode_MODE_INDEPENDENT:
		return fieldErr("live", true, "only in chain mode: an unbounded video is one diffusion-forcing chain")
	case live:
		j.Live = true
	case ds != 0 && df != 0:
		return fieldErr("duration_frames", df, "0 when duration_s is set (give one of them)")
	case df != 0:
		j.DurationField = "duration_frames"
		if int64(df) > int64(MaxDurationS)*int64(j.FPS) {
			return fieldErr("duration_frames", df, "1..24 h × fps")
		}
		j.TotalFrames = int64(df)
	case math.IsNaN(ds) || math.IsInf(ds, 0) || ds < 0 || ds > MaxDurationS:
		return fieldErr("duration_s", ds, "> 0 and ≤ 86400")
	case ds == 0 && spec.GetAudio() != "":
		j.AudioLength = true // as long as the audio
	case ds == 0 && cat.Models[j.Model].TalkingHead:
		return fieldErr("audio", "", "the id of an audio upload: model "+j.Model+" is a talking head, which speaks it; without a duration the video lasts as long as the audio")
	case ds == 0:
		return fieldErr("duration_s", ds, "> 0 and ≤ 86400, or duration_frames, or live, or neither with audio")
	default:
		j.DurationField = "duration_s"
		j.TotalFrames = int64(math.Round(ds * float64(j.FPS)))
		if j.TotalFrames < 1 {
			return fieldErr("duration_s", ds, "at least one frame at the job's fps")
		}
	}
	return nil
}

func checkWindow(spec *spoolv1.JobSpec, cat Catalog, j *Job) error {
	m := cat.Models[j.Model]
	j.Align = m.Align
	if w := int(spec.GetWindowFrames()); w != 0 {
		if w < MinWindow || w > min(MaxWindow, m.MaxWindow) {
			return fieldErr("window_frames", w, fmt.Sprintf("2..257 and at most the model's window (%s: %d); 0 means the model default (%d here)",
				j.Model, m.MaxWindow, j.Window))
		}
		j.Window = w
	}
	if o := spec.GetOverlapFrames(); o != 0 {
		j.Overlap = int(o)
	}
	aligned, alignedOverlap := j.Window, j.Overlap
	if j.Align > 1 {
		aligned = j.Window - (j.Window-1)%j.Align
		alignedOverlap = j.Overlap + (j.Align-(j.Overlap-1)%j.Align)%j.Align
	}
	if j.Overlap >= j.Window || alignedOverlap >= aligned {
		return fieldErr("overlap_frames", j.Overlap, "below window_frames (after aligning both to 4k+1 for this model)")
	}
	if j.Mode == plan.Chain && j.Overlap < 1 {
		return fieldErr("overlap_frames", j.Overlap, "≥ 1 in chain mode")
	}
	if j.Mode == plan.Independent && 2*alignedOverlap > aligned {
		return fieldErr("overlap_frames", j.Overlap, fmt.Sprintf("at most half of window_frames (%d, after aligning both for this model) "+
			"in independent mode: each segment crossfades one overlap with the segment before it and another with the one after", aligned))
	}
	return nil
}

func checkQuality(spec *spoolv1.JobSpec, cat Catalog, j *Job) error {
	m := cat.Models[j.Model]
	j.Steps, j.Guidance = m.Steps, m.Guidance
	if s := spec.GetSteps(); s != 0 {
		if s < MinSteps || s > MaxSteps {
			return fieldErr("steps", s, "1..200; 0 means the model default")
		}
		j.Steps = int(s)
	}
	if g := spec.GetGuidance(); g != 0 {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) || g < 0 || g > MaxGuidance {
			return fieldErr("guidance", g, "0..50, finite; 0 means the model default")
		}
		j.Guidance = g
	}
	return nil
}

func checkPrompts(spec *spoolv1.JobSpec, _ Catalog, j *Job) error {
	cues := spec.GetTimeline()
	if len(cues) == 0 {
		if err := checkPrompt("prompt", spec.GetPrompt()); err != nil {
			return err
		}
		j.Timeline = plan.Single(spec.GetPrompt())
		return nil
	}
	if spec.GetPrompt() != "" {
		return fieldErr("prompt", spec.GetPrompt(), "empty when a timeline is given: its cues carry the prompts (the first cue, at 0 s, is the opening prompt)")
	}
	if len(cues) > MaxTimelineCues {
		return fieldErr("timeline", len(cues), "1..256 cues")
	}
	j.Timeline = make(plan.Timeline, len(cues))
	prev := int64(-1)
	for i, c := range cues {
		field := func(name string) string { return "timeline[" + strconv.Itoa(i) + "]." + name }
		if err := checkPrompt(field("prompt"), c.GetPrompt()); err != nil {
			return err
		}
		s := c.GetFromS()
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 || s > MaxDurationS {
			return fieldErr(field("from_s"), s, "a time in seconds, 0..86400")
		}
		f := int64(math.Round(s * float64(j.FPS)))
		switch {
		case i == 0 && f != 0:
			return fieldErr(field("from_s"), s, "0 for the first cue")
		case i > 0 && f <= prev:
			return fieldErr(field("from_s"), s, "after the previous cue's time (strictly increasing, at least one frame apart)")
		case !j.Live && !j.AudioLength && f >= j.TotalFrames:
			return fieldErr(field("from_s"), s, "before the end of the video")
		}
		prev = f
		j.Timeline[i] = plan.Cue{FromFrame: f, Prompt: c.GetPrompt()}
	}
	return nil
}

func checkPrompt(field, p string) error {
	switch {
	case strings.TrimSpace(p) == "":
		return fieldErr(field, p, "1..4096 bytes of UTF-8, not blank")
	case len(p) > MaxPromptBytes:
		return fieldErr(field, strconv.Itoa(len(p))+" bytes", "1..4096 bytes of UTF-8")
	case !utf8.ValidString(p) || strings.ContainsRune(p, 0):
		return fieldErr(field, p, "valid UTF-8 without NUL")
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
