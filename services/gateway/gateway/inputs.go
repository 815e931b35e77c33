package gateway

import (
	"encoding/json"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// inputsView is the media a job is made from, as its spec names them:
// upload ids by role, and how an image or video is fitted to its frame.
type inputsView struct {
	Image        string `json:"image,omitempty"`
	Video        string `json:"video,omitempty"`
	Audio        string `json:"audio,omitempty"`
	Fit          string `json:"fit,omitempty"` // crop, pad or scale; with an image or a video
	IncludeInput bool   `json:"include_input,omitempty"`
}

// inputsOf reads a job's inputs from its stored spec; nil for a job made
// from a prompt alone, or a spec that does not decode.
func inputsOf(spec json.RawMessage) *inputsView {
	var s spoolv1.JobSpec
	if protojson.Unmarshal(spec, &s) != nil {
		return nil
	}
	v := inputsView{Image: s.GetImage(), Video: s.GetVideo(), Audio: s.GetAudio(), IncludeInput: s.GetIncludeInput()}
	if v == (inputsView{}) {
		return nil
	}
	if v.Image != "" || v.Video != "" {
		v.Fit = "crop"
		if f := s.GetFit(); f != spoolv1.Fit_FIT_UNSPECIFIED {
			v.Fit = strings.ToLower(strings.TrimPrefix(f.String(), "FIT_"))
		}
	}
	return &v
}
