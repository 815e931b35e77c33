package gateway

import (
	"encoding/json"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// inputsView is the media a job is made from, as its spec names them:
// upload ids by role (job_inputs' roles), and how an image, a video or a
// reference is fitted to its frame.
type inputsView struct {
	Image        string `json:"image,omitempty"`
	Video        string `json:"video,omitempty"`
	Audio        string `json:"audio,omitempty"`
	Reference    string `json:"reference,omitempty"` // a talking head's avatar, an image or a video
	Fit          string `json:"fit,omitempty"`       // crop, pad or scale; with an image, a video or a reference
	IncludeInput bool   `json:"include_input,omitempty"`
}

// inputsOf reads a job's inputs from its stored spec; nil for a job made
// from a prompt alone, or a spec that does not decode.
func inputsOf(spec json.RawMessage) *inputsView {
	var s spoolv1.JobSpec
	if protojson.Unmarshal(spec, &s) != nil {
		return nil
	}
	v := inputsView{Image: s.GetImage(), Video: s.GetVideo(), Audio: s.GetAudio(), Reference: s.GetReference(), IncludeInput: s.GetIncludeInput()}
	if v == (inputsView{}) {
		return nil
	}
	if v.Image != "" || v.Video != "" || v.Reference != "" {
		v.Fit = "crop"
		if f := s.GetFit(); f != spoolv1.Fit_FIT_UNSPECIFIED {
			v.Fit = strings.ToLower(strings.TrimPrefix(f.String(), "FIT_"))
		}
	}
	return &v
}
