package infer

/*
#include "spool_infer.h"
*/
import "C"

import "fmt"

// Size is a frame size in pixels.
type Size struct{ Width, Height int }

// The named presets of the C library; any even size up to 1920×1080 (either
// orientation) is accepted as well.
var (
	Preset540p  = Size{C.SPOOL_540P_WIDTH, C.SPOOL_540P_HEIGHT}
	Preset720p  = Size{C.SPOOL_720P_WIDTH, C.SPOOL_720P_HEIGHT}
	Preset1080p = Size{C.SPOOL_1080P_WIDTH, C.SPOOL_1080P_HEIGHT}
)

// Preset returns a named preset: "540p", "720p" or "1080p".
func Preset(name string) (Size, error) {
	switch name {
	case "540p":
		return Preset540p, nil
	case "720p":
		return Preset720p, nil
	case "1080p":
		return Preset1080p, nil
	}
	return Size{}, fmt.Errorf("infer: %w: preset %q: want 540p, 720p or 1080p", ErrInvalidRequest, name)
}
