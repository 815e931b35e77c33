package media

import (
	"errors"
	"fmt"
	"os/exec"
)

// ErrMissingFFmpeg is returned when ffmpeg or ffprobe is not installed.
var ErrMissingFFmpeg = errors.New("ffmpeg not found")

// lookPath finds an ffmpeg tool, with an install hint when it is missing.
func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not on PATH; run \"make deps\" or \"apt-get install -y ffmpeg\"", ErrMissingFFmpeg, name)
	}
	return p, nil
}
