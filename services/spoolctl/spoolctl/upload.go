package spoolctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

const uploadSynopsis = `[flags] FILE

Uploads FILE, an image (png, jpeg, webp, bmp, gif), a video or an audio file,
and prints its upload id, which a job spec names (image, video, audio). The
gateway probes it and refuses what is not whole media, saying why. The file
is streamed through the gateway (POST /uploads), or with -presign PUT to a
presigned MinIO URL and then completed. The same bytes uploaded again by the
same tenant give the same id.`

// upload is the gateway's view of an upload.
type upload struct {
	ID         string  `json:"id"`
	State      string  `json:"state"`
	Kind       string  `json:"kind"`
	Codec      string  `json:"codec"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	FPS        float64 `json:"fps"`
	Frames     int64   `json:"frames"`
	DurationS  float64 `json:"duration_s"`
	AudioCodec string  `json:"audio_codec"`
	SampleRate int     `json:"sample_rate"`
	Channels   int     `json:"channels"`
	SHA256     string  `json:"sha256"`
	Bytes      int64   `json:"bytes"`

	raw     json.RawMessage // the whole record, as the gateway answered it
	existed bool            // the tenant had uploaded the same bytes already
}

// summary says in one line what the probe found.
func (u upload) summary() string {
	var parts []string
	switch u.Kind {
	case "image":
		parts = append(parts, fmt.Sprintf("image %s %d×%d", u.Codec, u.Width, u.Height))
	case "video":
		parts = append(parts, fmt.Sprintf("video %s %d×%d, %.5g fps, %d frames, %.3f s", u.Codec, u.Width, u.Height, u.FPS, u.Frames, u.DurationS))
		if u.AudioCodec != "" {
			parts = append(parts, fmt.Sprintf("sound %s %d Hz × %d", u.AudioCodec, u.SampleRate, u.Channels))
		}
	case "audio":
		parts = append(parts, fmt.Sprintf("audio %s %d Hz × %d, %.3f s", u.Codec, u.SampleRate, u.Channels, u.DurationS))
	}
	parts = append(parts, fmt.Sprintf("%d bytes, sha256 %s", u.Bytes, u.SHA256))
	return u.ID + ": " + strings.Join(parts, "; ")
}

// mediaTypes are the media types of common extensions, which Go's own
// table lacks on a machine without /etc/mime.types.
var mediaTypes = map[string]string{".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
	".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
	".aac": "audio/aac", ".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".png": "image/png", ".jpg": "image/jpeg",
	".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp"}

// mediaTypeOf is the media type of a file name: image/*, video/* or
// audio/* by its extension, else application/octet-stream.
func mediaTypeOf(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := mediaTypes[ext]; ok {
		return t
	}
	t, _, _ := mime.ParseMediaType(mime.TypeByExtension(ext))
	if major, _, _ := strings.Cut(t, "/"); major == "image" || major == "video" || major == "audio" {
		return t
	}
	return "application/octet-stream"
}

func runUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var presign, verbose, asJSON *bool
	var tenant, ctype *string
	c, pos, err := clientCommand("upload", uploadSynopsis, args, stderr, 1, func(fs *flag.FlagSet) {
		presign = fs.Bool("presign", false, "PUT the file to a presigned URL, then complete the upload, instead of streaming it through the gateway")
		verbose = fs.Bool("v", false, "also show what the probe found, on stderr")
		asJSON = fs.Bool("json", false, "print the whole upload record as JSON instead of its id")
		tenant = fs.String("tenant", "", "with an admin key: the upload's tenant; default: the key's (a job uses its own tenant's uploads)")
		ctype = fs.String("type", "", "the file's media type; by default from its extension, else application/octet-stream")
	})
	if err != nil {
		return helpIsOK(err)
	}
	u, err := c.uploadFile(ctx, pos[0], *ctype, *tenant, *presign)
	if err != nil {
		return err
	}
	if *verbose {
		fmt.Fprintln(stderr, u.summary())
		if u.existed {
			fmt.Fprintf(stderr, "%s: the tenant had uploaded the same bytes already; nothing new is stored\n", u.ID)
		}
	}
	if *asJSON {
		var v any
		_ = json.Unmarshal(u.raw, &v)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	fmt.Fprintln(stdout, u.ID)
	return nil
}

// uploadFile uploads the file name of media type ctype (by default from
// its extension, see mediaTypeOf) for tenant (none: the default one),
// streamed through the gateway (POST /uploads) or, with presign, PUT to a
// presigned URL and then completed, and returns the upload.
func (c *client) uploadFile(ctx context.Context, name, ctype, tenant string, presign bool) (upload, error) {
	f, err := os.Open(name)
	if err != nil {
		return upload{}, fmt.Errorf("spoolctl upload: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return upload{}, fmt.Errorf("spoolctl upload: %w", err)
	}
	if !st.Mode().IsRegular() {
		return upload{}, fmt.Errorf("spoolctl upload: %s is not a file (a %s): give an image, a video or an audio file", name, st.Mode().Type())
	}
	if ctype == "" {
		ctype = mediaTypeOf(name)
	}
	q := ""
	if tenant != "" {
		q = "?tenant=" + url.QueryEscape(tenant)
	}
	var raw json.RawMessage
	var resp *http.Response
	if presign {
		resp, err = c.uploadPresigned(ctx, f, st.Size(), ctype, q, &raw)
	} else {
		resp, err = c.send(ctx, "POST", "/uploads"+q, ctype, f, st.Size(), &raw)
	}
	if err != nil {
		return upload{}, err
	}
	var u upload
	if err := json.Unmarshal(raw, &u); err != nil {
		return upload{}, fmt.Errorf("spoolctl upload: the answer: %w", err)
	}
	u.raw, u.existed = raw, resp.StatusCode == http.StatusOK
	return u, nil
}

// send makes a request to the gateway with body (size bytes) of media
// type ctype, and decodes its answer into out.
func (c *client) send(ctx context.Context, method, path, ctype string, body io.Reader, size int64, out any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", ctype)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	return c.roundTrip(req, out)
}

// uploadPresigned announces the file, PUTs it to the presigned URL it gets
// (without the gateway's token) and completes the upload.
func (c *client) uploadPresigned(ctx context.Context, f io.Reader, size int64, ctype, query string, out any) (*http.Response, error) {
	var p struct {
		UploadURL   string `json:"upload_url"`
		CompleteURL string `json:"complete_url"`
	}
	announce, _ := json.Marshal(map[string]any{"bytes": size, "content_type": ctype})
	if _, err := c.do(ctx, "POST", "/uploads"+query, strings.NewReader(string(announce)), &p); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.UploadURL, f)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("spoolctl: PUT to the presigned URL: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("spoolctl: PUT to the presigned URL: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return c.do(ctx, "POST", p.CompleteURL+query, nil, out)
}
