package audiobench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// speechExpr is aevalsrc's voice-like signal: a glottal tone of three
// harmonics whose pitch glides around 140 Hz (frequency modulated at 0.7
// and 2.3 Hz), with some breath noise, opened and closed by syllables at
// 4.3 Hz and silenced by pauses (where two slow sines sum below −0.7).
const speechExpr = "(0.5*sin(2*PI*(140*t-6.82*cos(4.398*t)-1.04*cos(14.45*t)))" +
	"+0.25*sin(4*PI*(140*t-6.82*cos(4.398*t)-1.04*cos(14.45*t)))" +
	"+0.12*sin(6*PI*(140*t-6.82*cos(4.398*t)-1.04*cos(14.45*t)))" +
	"+0.1*(2*random(0)-1))" +
	"*pow(max(0,sin(2*PI*4.3*t)),2)*gt(sin(2*PI*0.23*t)+0.4*sin(2*PI*0.61*t),-0.7)"

// loopSeconds is the voice's period: 47 s of it loops to any length.
const loopSeconds = 47

// SourceFormat says what the source file is.
const SourceFormat = "MP3 64 kb/s stereo 44.1 kHz (libmp3lame), a speech-like voice"

// sourceRecipe names this recipe in the cached file's name: change it when
// the recipe changes.
const sourceRecipe = "speech1"

// CacheDir is where the source files are kept between runs: the user's
// cache (~/.cache/spool/bench), else the temporary directory.
func CacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "spool", "bench")
	}
	return filepath.Join(os.TempDir(), "spool-bench")
}

// source returns the path of a seconds-long speech-like source in dir,
// making it the first time (an hour takes about half a minute: the voice
// is evaluated for loopSeconds, then looped and encoded).
func source(ctx context.Context, dir string, seconds int, o Options) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("%s-%ds-64k.mp3", sourceRecipe, seconds))
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return path, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("audio bench: source: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("audio bench: source: %w", err)
	}
	o.logf("making the %d s source once: %s", seconds, path)
	tmp, err := os.MkdirTemp(dir, "make-")
	if err != nil {
		return "", fmt.Errorf("audio bench: source: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	loop, mp3 := filepath.Join(tmp, "loop.wav"), filepath.Join(tmp, "source.mp3")
	steps := [][]string{
		{"-f", "lavfi", "-i", "aevalsrc=exprs='" + speechExpr + "':s=44100:d=" + strconv.Itoa(loopSeconds), "-c:a", "pcm_s16le", loop},
		{"-stream_loop", "-1", "-i", loop, "-t", strconv.Itoa(seconds), "-ar", "44100", "-ac", "2",
			"-c:a", "libmp3lame", "-b:a", "64k", mp3},
	}
	for _, args := range steps {
		args = append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)
		if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("audio bench: make the source (ffmpeg from \"make deps\"): %w\n%s", err, out)
		}
	}
	if err := os.Rename(mp3, path); err != nil {
		return "", fmt.Errorf("audio bench: source: %w", err)
	}
	return path, nil
}
