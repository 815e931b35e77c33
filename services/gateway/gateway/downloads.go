package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
)

// How clients outside the cluster reach objects. MinIO's own address
// (SPOOL_S3_ENDPOINT) is the cluster's, which no browser reaches: a URL
// handed to a client is presigned for SPOOL_GATEWAY_S3_PUBLIC_ENDPOINT
// when one is set, and in stream mode the gateway sends the video itself.
// What is sent is decided here, after the handlers' checks of the request.

// The values of SPOOL_GATEWAY_DOWNLOADS.
const (
	// DownloadsPresign redirects /download to a presigned URL.
	DownloadsPresign = "presign"
	// DownloadsStream streams the video through the gateway.
	DownloadsStream = "stream"
)

// videoExpiry is how long a presigned video URL stays valid.
const videoExpiry = time.Hour

// publicPresigner is bl's presigner for endpoint, or for bl's own endpoint
// when endpoint is empty; nil for a gateway without an object store.
func publicPresigner(bl *blob.Store, endpoint string) (*blob.Presigner, error) {
	switch {
	case bl == nil:
		return nil, nil
	case endpoint == "":
		return bl.Presigner(), nil
	}
	p, err := bl.PublicPresigner(endpoint)
	if err != nil {
		return nil, fmt.Errorf("gateway: SPOOL_GATEWAY_S3_PUBLIC_ENDPOINT: %w", err)
	}
	return p, nil
}

// sendVideo answers with j's final video, which exists: in presign mode a
// 302 to a URL presigned for the public endpoint (an hour), in stream mode
// the bytes, with Content-Type, Content-Length, ETag, Last-Modified and
// Range (206 with Content-Range) as for a file, HEAD too.
func (g *Gateway) sendVideo(w http.ResponseWriter, r *http.Request, j store.Job) {
	key := blob.Key(j.FinalKey)
	if g.cfg.Downloads == DownloadsStream {
		switch err := g.serveObject(w, r, key, "video/mp4", ""); {
		case errors.Is(err, blob.ErrNotFound):
			g.notMade(r.Context(), w, j.ID, "video", retryVideo)
		case err != nil:
			fail(w, err)
		}
		return
	}
	u, err := g.public.PresignGet(r.Context(), key, videoExpiry)
	if err != nil {
		fail(w, err)
		return
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// videoURL is where a player fetches j's final video without the API's
// token: a URL presigned for the public endpoint (an hour), or in stream
// mode /download/{id}; "" when it cannot be signed.
func (g *Gateway) videoURL(ctx context.Context, j store.Job) string {
	if g.cfg.Downloads == DownloadsStream {
		return "/download/" + j.ID
	}
	u, err := g.public.PresignGet(ctx, blob.Key(j.FinalKey), videoExpiry)
	if err != nil {
		return ""
	}
	return u.String()
}

// uploadURL is the URL an announced upload's bytes are PUT to, presigned
// for the public endpoint until expiry. In stream mode without a public
// endpoint clients cannot reach MinIO: it answers 415 (the client must
// POST the file itself) and returns false.
func (g *Gateway) uploadURL(w http.ResponseWriter, r *http.Request, key blob.Key, expiry time.Duration) (string, bool) {
	if g.cfg.Downloads == DownloadsStream && g.cfg.S3PublicEndpoint == "" {
		refuseUpload(w, http.StatusUnsupportedMediaType, "content_type", "Content-Type",
			"this gateway takes no presigned uploads: clients do not reach its object store (SPOOL_GATEWAY_DOWNLOADS=stream, no "+
				"SPOOL_GATEWAY_S3_PUBLIC_ENDPOINT); POST the file itself, as the body, with its media type")
		return "", false
	}
	u, err := g.public.PresignPut(r.Context(), key, expiry)
	if err != nil {
		fail(w, err)
		return "", false
	}
	return u.String(), true
}
