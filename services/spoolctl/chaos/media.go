package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// tenant owns every job and upload of a run.
const tenant = "chaos"

// inputs are the media files the driver uploads, made by ffmpeg as the
// render tests make theirs, and the ids of their uploads.
type inputs struct {
	Image, Video, Audio string // files
	ImageID, VideoID    string // uploads
	AudioID             string
	AudioS              float64 // the audio's length, seconds
}

// audioSeconds is the length of the talking heads' speech.
const audioSeconds = 12.0

// makeInputs writes a 400x300 image, a 2 s 30 fps 320x240 video and a
// 12 s stereo 44.1 kHz tone, its loudness swelling and fading, into dir.
func makeInputs(ctx context.Context, dir string) (inputs, error) {
	in := inputs{Image: filepath.Join(dir, "face.png"), Video: filepath.Join(dir, "clip.mp4"), Audio: filepath.Join(dir, "speech.wav"),
		AudioS: audioSeconds}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return in, fmt.Errorf("chaos: %w", err)
	}
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=size=400x300", "-frames:v", "1", in.Image},
		{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", in.Video},
		{"-f", "lavfi", "-i", fmt.Sprintf("sine=f=220:r=44100:d=%g", audioSeconds), "-af", "volume='0.2+0.8*abs(sin(6*t))':eval=frame",
			"-ac", "2", in.Audio},
	} {
		cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return in, fmt.Errorf("chaos: ffmpeg %v (make deps installs it): %w\n%s", args, err, b)
		}
	}
	return in, nil
}

// upload sends the inputs through the gateway's POST /uploads, with an
// admin key.
func (in *inputs) upload(ctx context.Context, gateway, key string) error {
	for _, u := range []struct {
		file, ctype, kind string
		id                *string
	}{
		{in.Image, "image/png", "image", &in.ImageID},
		{in.Video, "video/mp4", "video", &in.VideoID},
		{in.Audio, "audio/wav", "audio", &in.AudioID},
	} {
		id, err := uploadFile(ctx, gateway, key, u.file, u.ctype, u.kind)
		if err != nil {
			return err
		}
		*u.id = id
	}
	return nil
}

// uploadFile posts file as the body of POST /uploads and returns the
// ready upload's id; the gateway probes it and must find kind.
func uploadFile(ctx context.Context, gateway, key, file, ctype, kind string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("chaos: %w", err)
	}
	var up struct {
		ID    string `json:"id"`
		Kind  string `json:"kind"`
		State string `json:"state"`
	}
	err = retry(ctx, time.Minute, "POST /uploads "+filepath.Base(file), func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gateway+"/uploads?tenant="+tenant, bytes.NewReader(data))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return true, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode >= 500 {
			return true, fmt.Errorf("%s: %s", resp.Status, body)
		}
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("%s: %s", resp.Status, body)
		}
		return false, json.Unmarshal(body, &up)
	})
	if err != nil {
		return "", err
	}
	if up.Kind != kind || up.ID == "" {
		return "", fmt.Errorf("chaos: upload of %s: kind %q id %q, want kind %s", file, up.Kind, up.ID, kind)
	}
	return up.ID, nil
}

// retry calls try until it succeeds, answers that a retry cannot help
// (again false), or within passes; between tries it backs off from 100 ms
// to 2 s. It is how a client rides out a fault: the same request again.
func retry(ctx context.Context, within time.Duration, what string, try func(context.Context) (again bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
		again, err := try(tctx)
		tcancel()
		if err == nil {
			return nil
		}
		if !again {
			return fmt.Errorf("chaos: %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: %s: gave up after %v: %w", what, within, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
