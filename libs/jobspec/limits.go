package jobspec

import (
	"fmt"

	"github.com/spoolvideo/spool/libs/ident"
)

// The limits on a JobSpec. The README documents them; a test keeps the two
// in step.
const (
	MaxDurationS     = 86400 // a bounded video lasts at most 24 hours
	MaxAudioS        = 10800 // an audio track lasts at most 3 hours
	MaxReferenceS    = 10    // a talking head's template video lasts at most 10 s
	AudioProbeSlackS = 0.25  // how far a duration may pass an audio upload's probed length before intake counts its samples
	MinFPS, MaxFPS   = 1, 60
	MinSide          = 64   // pixels, either side, even
	MaxLongSide      = 1920 // pixels
	MaxShortSide     = 1080 // pixels
	MinWindow        = 2    // frames
	MaxWindow        = 257  // frames
	MinSteps         = 1
	MaxSteps         = 200
	MaxGuidance      = 50
	MaxPromptBytes   = 4096 // UTF-8 bytes per prompt
	MaxTimelineCues  = 256
	MinPriority      = 1
	MaxPriority      = 9
	DefaultPriority  = 5
	DefaultPool      = "default"
	DefaultTenant    = "default"
	nameAllowed      = ident.Rule
	resolutionPreset = "540p, 720p or 1080p"
)

// Limit is one documented limit.
type Limit struct {
	Field   string // the JobSpec field (proto name)
	Allowed string // what is allowed, in words
}

// Limits lists every limit, in the order the README shows them.
func Limits() []Limit {
	return []Limit{
		{"duration_s", fmt.Sprintf("> 0 and ≤ %d s; exactly one of duration_s and duration_frames, or neither with live or audio "+
			"(the job then lasts as long as its audio); with audio, at most the audio's length", MaxDurationS)},
		{"duration_frames", fmt.Sprintf("≥ 1 and ≤ %d s × fps", MaxDurationS)},
		{"live", "true only with no duration and in chain mode: an unbounded video, ended by cancel"},
		{"live_ahead_s", liveAheadAllowed},
		{"fps", fmt.Sprintf("%d..%d; 0 means the model's default (24 for every shipped model)", MinFPS, MaxFPS)},
		{"resolution", resolutionPreset + ": the model's resolution of that name; or width and height; neither means the model's default resolution"},
		{"width, height", fmt.Sprintf("even, %d..%d on the long side and %d..%d on the short side; both or neither; a size the model allows", MinSide, MaxLongSide, MinSide, MaxShortSide)},
		{"window_frames", fmt.Sprintf("%d..%d and at most the model's trained window; 0 means the model's default at the resolution (SkyReels-V2 DF: 97 at 540p, 121 at 720p)", MinWindow, MaxWindow)},
		{"overlap_frames", "below window_frames, ≥ 1 in chain mode; 0 means the model's default at the resolution (SkyReels-V2 DF: 17 at 540p, 37 at 720p)"},
		{"steps", fmt.Sprintf("%d..%d; 0 means the model default", MinSteps, MaxSteps)},
		{"guidance", fmt.Sprintf("0..%d, finite; 0 means the model default", MaxGuidance)},
		{"prompt", fmt.Sprintf("1..%d bytes of UTF-8, not blank; or a timeline, and then empty", MaxPromptBytes)},
		{"timeline", fmt.Sprintf("1..%d cues, the first at from_s 0, strictly increasing; each takes effect at the segment boundary nearest to it "+
			"(at most half of window − overlap frames away; halfway: the later one), which must be its own and inside a bounded video", MaxTimelineCues)},
		{"model", "a model of the catalog that a pool serves (GET /models/info); empty means " + DefaultModel},
		{"pool", nameAllowed + "; a pool that serves the model; empty means the first pool that serves it"},
		{"priority", fmt.Sprintf("%d..%d; 0 means %d", MinPriority, MaxPriority, DefaultPriority)},
		{"tenant", nameAllowed + "; empty means " + DefaultTenant},
		{"id", "empty, or " + nameAllowed},
		{"image", "empty, or the id of an image upload of the job's tenant (POST /uploads): segment 0 starts from it, in chain or independent mode"},
		{"video", "empty, or the id of a video upload of the job's tenant, lasting at least overlap_frames frames at the job's fps: " +
			"the job extends it; chain mode only, bounded, not with image"},
		{"audio", fmt.Sprintf("the id of an audio upload of the job's tenant lasting at most %d s, for a model that takes audio "+
			"(audio_sample_rate in the catalog: ref-talk); required by a talking-head model; empty otherwise; not with live", MaxAudioS)},
		{"reference", fmt.Sprintf("for a talking-head model (talking_head in the catalog: ref-talk), and required by it: the id of an image "+
			"upload, or of a video upload of at most %d s, of the job's tenant: the avatar; a video shorter than the job plays back and forth; "+
			"empty for other models; not with image or video", MaxReferenceS)},
		{"fit", "FIT_CROP, FIT_PAD or FIT_SCALE, only with image, video or reference; unset means FIT_CROP"},
		{"include_input", "true only with video: the output starts with the input video, then the new frames"},
	}
}
