package spoolctl

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spoolvideo/spool/libs/jobspec"
)

// The demo's talking head: an avatar drawn by ffmpeg speaks a line spoken
// by espeak-ng, both made at run time, uploaded, and animated by a
// talking-head model (ref-talk: the avatar with a mouth that opens with the
// voice's loudness, centred at 0.5 W, 0.70 H).
const (
	// talkLine is what it says: about 6 s of espeak-ng's voice.
	talkLine = "Hello, I am spool. I turn your words into video, a segment at a time, on many workers at once."
	// talkPrompt is its job's prompt.
	talkPrompt = "spool's avatar, a cartoon face, speaking to the camera"
	// talkWidth, talkHeight and talkSteps keep it to seconds on two CPU
	// cores; the avatar has the video's size, so that it is not cropped.
	talkWidth, talkHeight, talkSteps = 640, 360, 8
	// talkModelName is the talking-head model the demo uses when the
	// catalog has it.
	talkModelName = "ref-talk"
)

// talkMedia are the files the talking head is made from.
type talkMedia struct {
	voice  string // WAV, espeak-ng's
	avatar string // PNG
}

// makeTalkMedia writes into dir voice.wav, talkLine spoken by espeak-ng,
// and avatar.png, a face on a gradient drawn by ffmpeg, width×height. A
// missing espeak-ng or ffmpeg is an error naming make deps.
func makeTalkMedia(ctx context.Context, dir string, width, height int) (talkMedia, error) {
	for _, tool := range []string{"espeak-ng", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return talkMedia{}, fmt.Errorf("the demo's talking head needs %s, which is not installed: run \"make deps\" "+
				"(or -talk=false for the text-to-video job alone)", tool)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return talkMedia{}, err
	}
	m := talkMedia{voice: filepath.Join(dir, "voice.wav"), avatar: filepath.Join(dir, "avatar.png")}
	if err := run(ctx, "espeak-ng", "-w", m.voice, talkLine); err != nil {
		return talkMedia{}, err
	}
	err := run(ctx, "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", fmt.Sprintf("color=c=black:s=%dx%d", width, height),
		"-vf", avatarFilter(), "-frames:v", "1", m.avatar)
	if err != nil {
		return talkMedia{}, err
	}
	return m, nil
}

// run runs a command, its output in the error when it fails.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// oval is an expression of the pixel (X, Y) in a frame of W×H, not 0
// inside the ellipse centred at (x, y) of radii rx and ry: each an
// expression of W and H. An x of "|dx" is both x = W/2 ± dx: a pair.
func oval(x, y, rx, ry string) string {
	dx := "X-" + x
	if d, ok := strings.CutPrefix(x, "|"); ok {
		dx = "abs(X-0.5*W)-" + d
	}
	return fmt.Sprintf("lte(pow((%s)/(%s),2)+pow((Y-%s)/(%s),2),1)", dx, rx, y, ry)
}

// avatarParts are the avatar's shapes, each an expression of the pixel
// (X, Y) in a frame of W×H (not 0 inside) and its colour, painted in this
// order over a gradient. The face is centred on the frame's width, its
// mouth, which the model draws, at 0.70 H: between the nose and the chin.
var avatarParts = []struct {
	name, inside string
	r, g, b      int
}{
	{"shoulders", oval("0.5*W", "1.12*H", "0.30*W", "0.30*H"), 52, 84, 140},
	{"ears", oval("|0.185*W", "0.52*H", "0.025*W", "0.07*H"), 226, 176, 138},
	{"hair behind", oval("0.5*W", "0.50*H", "0.205*W", "0.45*H") + "*lt(Y,0.50*H)", 74, 48, 34},
	{"head", oval("0.5*W", "0.54*H", "0.185*W", "0.40*H"), 238, 190, 152},
	{"fringe", oval("0.5*W", "0.54*H", "0.185*W", "0.40*H") + "*lt(Y,0.26*H+0.04*H*sin(40*X/W))", 74, 48, 34},
	{"cheeks", oval("|0.12*W", "0.585*H", "0.025*W", "0.025*W"), 240, 160, 140}, // clear of the open mouth
	{"brows", "between(abs(X-0.5*W),0.045*W,0.115*W)*between(Y,0.34*H,0.36*H)", 74, 48, 34},
	{"eyes", oval("|0.08*W", "0.42*H", "0.028*W", "0.028*W"), 250, 250, 250},
	{"pupils", oval("|0.08*W", "0.425*H", "0.013*W", "0.013*W"), 36, 40, 60},
	{"nose", oval("0.5*W", "0.56*H", "0.018*W", "0.035*H"), 222, 168, 130},
}

// avatarFilter is the ffmpeg filter that paints the avatar over its input
// (any frame: only its size counts), one geq expression per channel.
func avatarFilter() string {
	channel := func(bg string, c func(r, g, b int) int) string {
		e := bg
		for _, p := range avatarParts {
			e = fmt.Sprintf("if(%s,%d,%s)", p.inside, c(p.r, p.g, p.b), e)
		}
		return "'" + e + "'"
	}
	return "format=rgb24,geq=r=" + channel("40+30*Y/H", func(r, _, _ int) int { return r }) +
		":g=" + channel("90+40*Y/H", func(_, g, _ int) int { return g }) +
		":b=" + channel("120+60*Y/H", func(_, _, b int) int { return b })
}

// talkPath is where the talking head of the demo written to demo goes:
// beside it, "-talk" added to its name (out/demo.mp4: out/demo-talk.mp4;
// a name without extension gets .mp4).
func talkPath(demo string) string {
	ext := filepath.Ext(demo)
	if ext == filepath.Base(demo) { // a name that starts with its only dot
		ext = ""
	}
	stem := strings.TrimSuffix(demo, ext)
	if ext == "" {
		ext = ".mp4"
	}
	return stem + "-talk" + ext
}

// talkModel is the talking-head model of the demo: ref-talk, else the
// first talking-head model the development pool serves.
func talkModel(cat jobspec.Catalog, served []string) (string, error) {
	if m, ok := cat.Models[talkModelName]; ok && m.TalkingHead && slices.Contains(served, talkModelName) {
		return talkModelName, nil
	}
	for _, name := range served {
		if cat.Models[name].TalkingHead {
			return name, nil
		}
	}
	return "", fmt.Errorf("the catalog has no talking-head model that runs on the CPU (talking_head true, gpu_memory_mib 0) "+
		"for the demo's talking head: name a catalog with %s, or give -talk=false", talkModelName)
}

// talkJob uploads the talking head's voice and avatar through the gateway
// and is its job, id, writing its video to out.
func (c *client) talkJob(ctx context.Context, m talkMedia, model, id, out string) (demoJob, error) {
	voice, err := c.uploadFile(ctx, m.voice, "", "", false)
	if err != nil {
		return demoJob{}, fmt.Errorf("the talking head's voice: %w", err)
	}
	avatar, err := c.uploadFile(ctx, m.avatar, "", "", false)
	if err != nil {
		return demoJob{}, fmt.Errorf("the talking head's avatar: %w", err)
	}
	spec, err := json.Marshal(map[string]any{"id": id, "model": model, "prompt": talkPrompt, "audio": voice.ID, "reference": avatar.ID,
		"width": talkWidth, "height": talkHeight, "steps": talkSteps, "seed": 2026})
	if err != nil {
		return demoJob{}, err
	}
	return demoJob{kind: "talking head", spec: spec, out: out}, nil
}
