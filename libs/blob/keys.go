package blob

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/ident"
)

// ErrInvalidKey is wrapped by every error about an id or a key.
var ErrInvalidKey = errors.New("invalid object key")

// ErrNoPreviewFile is a name that no file of a job's preview has
// (HLSFile); it wraps ErrInvalidKey.
var ErrNoPreviewFile = fmt.Errorf("%w: no such preview file", ErrInvalidKey)

// Key is an object key built by this package from validated parts.
type Key string

// String returns the key.
func (k Key) String() string { return string(k) }

// ValidateJobID checks a job id against ident.Rule.
func ValidateJobID(id string) error {
	if !ident.Valid(id) {
		return fmt.Errorf("%w: job id %q: want %s", ErrInvalidKey, clip(id), ident.Rule)
	}
	return nil
}

// validateName checks an input file name: 1..128 of A-Z, a-z, 0-9, '.',
// '-' and '_', not starting with '.'.
func validateName(name string) error {
	if len(name) == 0 || len(name) > 128 || name[0] == '.' {
		return fmt.Errorf("%w: name %q: want 1..128 of A-Z, a-z, 0-9, '.', '-' and '_', not starting with '.'", ErrInvalidKey, clip(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("%w: name %q: byte %d (%q) is not allowed", ErrInvalidKey, clip(name), i, c)
		}
	}
	return nil
}

// JobPrefix is "jobs/<job>/", under which every object of the job lies.
func JobPrefix(job string) (Key, error) {
	if err := ValidateJobID(job); err != nil {
		return "", err
	}
	return Key("jobs/" + job + "/"), nil
}

// AttemptPrefix is "jobs/<job>/seg/<idx>/a<attempt>/".
func AttemptPrefix(job string, idx, attempt uint32) (Key, error) {
	p, err := JobPrefix(job)
	if err != nil {
		return "", err
	}
	if attempt < 1 {
		return "", fmt.Errorf("%w: attempt %d: attempts count from 1", ErrInvalidKey, attempt)
	}
	return p + Key("seg/"+u(idx)+"/a"+u(attempt)+"/"), nil
}

// SegmentVideo is the video fragment of one attempt; ext is "mp4" or "m4s".
func SegmentVideo(job string, idx, attempt uint32, ext string) (Key, error) {
	if ext != "mp4" && ext != "m4s" {
		return "", fmt.Errorf("%w: segment video extension %q: want mp4 or m4s", ErrInvalidKey, ext)
	}
	p, err := AttemptPrefix(job, idx, attempt)
	return under(p, "video."+ext, err)
}

// SegmentTail is the tail state of one attempt.
func SegmentTail(job string, idx, attempt uint32) (Key, error) {
	p, err := AttemptPrefix(job, idx, attempt)
	return under(p, "tail.bin", err)
}

// HLSPlaylist is the job's live playlist.
func HLSPlaylist(job string) (Key, error) {
	p, err := JobPrefix(job)
	return under(p, "hls/"+hlsPlaylist, err)
}

// HLSInit is the init segment (ftyp+moov) the playlist maps.
func HLSInit(job string) (Key, error) {
	p, err := JobPrefix(job)
	return under(p, "hls/"+hlsInit, err)
}

// HLSSegment is segment idx of the playlist.
func HLSSegment(job string, idx uint32) (Key, error) {
	p, err := JobPrefix(job)
	return under(p, "hls/"+u(idx)+".m4s", err)
}

// HLSInputSegment is fragment k of an extension's kept input video, as a
// media segment of the playlist, listed before segment 0's.
func HLSInputSegment(job string, k uint32) (Key, error) {
	p, err := JobPrefix(job)
	return under(p, "hls/in"+u(k)+".m4s", err)
}

// The names of the preview's files other than its media segments.
const (
	hlsPlaylist = "index.m3u8"
	hlsInit     = "init.mp4"
)

// HLSFile is the job's preview file of that name, as the playlist names
// it: index.m3u8 (HLSPlaylist), init.mp4 (HLSInit), <n>.m4s (HLSSegment n)
// or in<n>.m4s (HLSInputSegment n), n in decimal without leading zeros.
// Any other name is ErrNoPreviewFile (which wraps ErrInvalidKey), an
// invalid job ErrInvalidKey alone.
func HLSFile(job, name string) (Key, error) {
	if err := ValidateJobID(job); err != nil {
		return "", err
	}
	switch name {
	case hlsPlaylist:
		return HLSPlaylist(job)
	case hlsInit:
		return HLSInit(job)
	}
	digits, input := strings.CutPrefix(strings.TrimSuffix(name, ".m4s"), "in")
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || !strings.HasSuffix(name, ".m4s") || u(uint32(n)) != digits {
		return "", fmt.Errorf("%w: %q: want %s, %s, <n>.m4s or in<n>.m4s", ErrNoPreviewFile, clip(name), hlsPlaylist, hlsInit)
	}
	if input {
		return HLSInputSegment(job, uint32(n))
	}
	return HLSSegment(job, uint32(n))
}

// Final is the job's final MP4.
func Final(job string) (Key, error) {
	p, err := JobPrefix(job)
	return under(p, "final.mp4", err)
}

// under is prefix p, then rest; "" with err when err is not nil.
func under(p Key, rest string, err error) (Key, error) {
	if err != nil {
		return "", err
	}
	return p + Key(rest), nil
}

// UploadIDPrefix starts every upload id.
const UploadIDPrefix = "up-"

// ValidateUploadID checks an upload id: "up-" then 1..61 of a-z and 0-9.
func ValidateUploadID(id string) error {
	rest, ok := strings.CutPrefix(id, UploadIDPrefix)
	if !ok || len(rest) == 0 || len(rest) > 61 || strings.Trim(rest, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return fmt.Errorf("%w: upload id %q: want %q then 1..61 of a-z and 0-9", ErrInvalidKey, clip(id), UploadIDPrefix)
	}
	return nil
}

// UploadPrefix is "uploads/<tenant>/<upload>/", under which lie an
// upload's bytes and everything intake derives from them.
func UploadPrefix(tenant, id string) (Key, error) {
	if !ident.Valid(tenant) {
		return "", fmt.Errorf("%w: tenant %q: want %s", ErrInvalidKey, clip(tenant), ident.Rule)
	}
	if err := ValidateUploadID(id); err != nil {
		return "", err
	}
	return Key("uploads/" + tenant + "/" + id + "/"), nil
}

// UploadSource is the uploaded bytes, as the client sent them.
func UploadSource(tenant, id string) (Key, error) {
	p, err := UploadPrefix(tenant, id)
	return under(p, "source", err)
}

// UploadIncoming is where a presigned PUT lands: completing the upload
// copies it to UploadSource, which only the gateway writes, so that bytes
// PUT again after the probe never replace what was probed.
func UploadIncoming(tenant, id string) (Key, error) {
	p, err := UploadPrefix(tenant, id)
	return under(p, "incoming", err)
}

// NewUploadID returns a fresh upload id: UploadIDPrefix then 26 random
// characters of a-z and 2-7 (130 bits).
func NewUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return UploadIDPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// UploadDerived is what intake made of an upload for one use: variant
// names the use (e.g. "960x540-24fps-crop"), name the object (e.g.
// "image.rgb"); both follow the input-name rule (1..128 of A-Z, a-z, 0-9,
// '.', '-' and '_', not starting with '.').
func UploadDerived(tenant, id, variant, name string) (Key, error) {
	p, err := UploadPrefix(tenant, id)
	if err != nil {
		return "", err
	}
	if err := validateName(variant); err != nil {
		return "", err
	}
	if err := validateName(name); err != nil {
		return "", err
	}
	return p + Key("derived/"+variant+"/"+name), nil
}

func u(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// ParseTailKey accepts key only when it is the tail state of some segment
// attempt of job, exactly as SegmentTail builds it.
func ParseTailKey(job, key string) (Key, error) {
	var idx, attempt uint32
	p, err := JobPrefix(job)
	if err != nil {
		return "", err
	}
	if _, err := fmt.Sscanf(strings.TrimPrefix(key, string(p)), "seg/%d/a%d/tail.bin", &idx, &attempt); err != nil {
		return "", fmt.Errorf("%w: %q is not a tail state of job %s", ErrInvalidKey, clip(key), job)
	}
	k, err := SegmentTail(job, idx, attempt)
	if err != nil || string(k) != key {
		return "", fmt.Errorf("%w: %q is not a tail state of job %s", ErrInvalidKey, clip(key), job)
	}
	return k, nil
}

// ParseUploadDerivedKey accepts key only when it is an object intake
// derived from an upload, exactly as UploadDerived builds it.
func ParseUploadDerivedKey(key string) (Key, error) {
	parts := strings.Split(key, "/")
	if len(parts) != 6 || parts[0] != "uploads" || parts[3] != "derived" {
		return "", fmt.Errorf("%w: %q is not uploads/<tenant>/<upload>/derived/<variant>/<name>", ErrInvalidKey, clip(key))
	}
	k, err := UploadDerived(parts[1], parts[2], parts[4], parts[5])
	if err != nil || string(k) != key {
		return "", fmt.Errorf("%w: %q is not an object derived from an upload", ErrInvalidKey, clip(key))
	}
	return k, nil
}
