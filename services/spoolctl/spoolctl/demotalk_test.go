package spoolctl

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/realpart"
)

// TestTalkMedia: the demo's talking head is made at run time from a voice
// espeak-ng speaks (a few seconds of it) and an avatar ffmpeg draws at the
// size asked, a face under the point where ref-talk draws the mouth, with
// dark pupils, on a background of another colour.
func TestTalkMedia(t *testing.T) {
	for _, tool := range []string{"espeak-ng", "ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			realpart.Missing(t, "%s is not installed; run \"make deps\"", tool)
		}
	}
	for _, size := range []image.Point{{talkWidth, talkHeight}, {320, 180}} {
		t.Run(strconv.Itoa(size.X)+"x"+strconv.Itoa(size.Y), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "demo")
			m, err := makeTalkMedia(context.Background(), dir, size.X, size.Y)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(m.voice) != dir || filepath.Dir(m.avatar) != dir {
				t.Fatalf("the media are not in %s: %+v", dir, m)
			}
			out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", m.voice).Output()
			if err != nil {
				t.Fatalf("ffprobe %s: %v", m.voice, err)
			}
			if d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err != nil || d <= 1 || d > 10 {
				t.Errorf("the voice lasts %q s, want more than 1 s and at most 10 s (%v)", out, err)
			}
			f, err := os.Open(m.avatar)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("the avatar: %v", err)
			}
			if got := img.Bounds().Size(); got != size {
				t.Fatalf("the avatar is %v, want %v", got, size)
			}
			at := func(x, y float64) [3]uint32 {
				r, g, b, _ := img.At(int(x*float64(size.X)), int(y*float64(size.Y))).RGBA()
				return [3]uint32{r >> 8, g >> 8, b >> 8}
			}
			skin, bg := [3]uint32{238, 190, 152}, at(0.02, 0.5)
			for _, p := range [][2]float64{{0.5, 0.70}, {0.45, 0.70}, {0.55, 0.70}, {0.5, 0.66}, {0.5, 0.74}} {
				if c := at(p[0], p[1]); c != skin {
					t.Errorf("the mouth's place (%g W, %g H) is %v, not the face's skin %v", p[0], p[1], c, skin)
				}
			}
			if bg == skin || bg[2] < bg[0] {
				t.Errorf("the background %v is not a blue apart from the face", bg)
			}
			for _, x := range []float64{0.42, 0.58} {
				if c := at(x, 0.425); c[0]+c[1]+c[2] > 200 {
					t.Errorf("no dark pupil at (%g W, 0.425 H): %v", x, c)
				}
			}
		})
	}
}

// TestTalkMediaNeedsTools: without espeak-ng the demo's talking head is an
// error that names make deps, and -talk=false, not a silent skip.
func TestTalkMediaNeedsTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := makeTalkMedia(context.Background(), t.TempDir(), talkWidth, talkHeight)
	if err == nil || !strings.Contains(err.Error(), "espeak-ng") || !strings.Contains(err.Error(), "make deps") ||
		!strings.Contains(err.Error(), "-talk=false") {
		t.Fatalf("without espeak-ng: %v", err)
	}
}

// TestTalkPath: the talking head's video lies beside the demo's, named
// after it.
func TestTalkPath(t *testing.T) {
	for demo, want := range map[string]string{
		"out/demo.mp4":       "out/demo-talk.mp4",
		"demo.mp4":           "demo-talk.mp4",
		"/tmp/a.b/clip.mov":  "/tmp/a.b/clip-talk.mov",
		"out/demo":           "out/demo-talk.mp4",
		"out.d/demo":         "out.d/demo-talk.mp4",
		"out/.mp4":           "out/.mp4-talk.mp4",
		"out/demo.final.mp4": "out/demo.final-talk.mp4",
	} {
		if got := talkPath(demo); got != want {
			t.Errorf("talkPath(%q) = %q, want %q", demo, got, want)
		}
	}
}

// TestTalkModel: the demo speaks with ref-talk where the pool serves it,
// else with another talking head the pool serves, else it says what to do.
func TestTalkModel(t *testing.T) {
	cat := jobspec.DefaultCatalog()
	if got, err := talkModel(cat, cat.CPUModels()); err != nil || got != "ref-talk" {
		t.Errorf("the shipped catalog: %q, %v; want ref-talk", got, err)
	}
	other := jobspec.Catalog{Models: map[string]jobspec.Model{"ref": cat.Models["ref"], "face": cat.Models["ref-talk"]}}
	if got, err := talkModel(other, []string{"ref", "face"}); err != nil || got != "face" {
		t.Errorf("a catalog without ref-talk: %q, %v; want face", got, err)
	}
	if _, err := talkModel(cat, []string{"ref", "sim"}); err == nil || !strings.Contains(err.Error(), "-talk=false") {
		t.Errorf("a pool without a talking head: %v", err)
	}
}
