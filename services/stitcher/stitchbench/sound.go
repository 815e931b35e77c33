package stitchbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/media"
)

// withSound takes in seconds of a 440 Hz sine as an audio upload's intake
// does (media.IntakeAudio), stores its manifest, packets and index, and
// records the manifest as the job's audio, as the dispatcher records an
// audio job's intake. It returns the packets' size.
func withSound(ctx context.Context, bl *blob.Store, dsn string, seconds int) (int64, error) {
	dir, err := os.MkdirTemp("", "spool-stitch-bench-sound")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	src := filepath.Join(dir, "sine.m4a") // AAC, not WAV: an hour of PCM would be hundreds of MB
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
		"sine=f=440:r=48000:d="+strconv.Itoa(seconds), "-ac", "2", "-c:a", "aac", "-b:a", "96k", src).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("stitch bench: make the audio: %w\n%s", err, out)
	}
	var packets bytes.Buffer
	res, err := media.IntakeAudio(ctx, src, media.AudioIntakeOptions{Rate: 16000, AAC: &packets})
	if err != nil {
		return 0, fmt.Errorf("stitch bench: %w", err)
	}
	manifest, err := json.Marshal(media.AudioManifest{Rate: 16000, Samples: res.Samples, Track: res.Track})
	if err != nil {
		return 0, err
	}
	var key blob.Key
	for _, o := range []struct {
		name string
		data []byte
	}{{media.AACName, packets.Bytes()}, {media.AACIndexName, res.Index}, {media.AudioManifestName, manifest}} { // the manifest last
		if key, err = blob.UploadDerived("bench", "up-stitchbench", "aac", o.name); err != nil {
			return 0, err
		}
		if _, err := bl.Put(ctx, key, bytes.NewReader(o.data), int64(len(o.data)), blob.PutOptions{}); err != nil {
			return 0, err
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("stitch bench: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, `UPDATE jobs SET audio_key = $2 WHERE id = $1`, jobID, string(key)); err != nil {
		return 0, fmt.Errorf("stitch bench: record the job's audio: %w", err)
	}
	return int64(packets.Len()), nil
}
