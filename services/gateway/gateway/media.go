package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"path"

	"github.com/spoolvideo/spool/libs/blob"
)

func jsonLine(v any) ([]byte, error) { return json.Marshal(v) }

// hls serves the job's live preview from MinIO: index.m3u8, init.mp4,
// <n>.m4s and an extension's kept input, in<k>.m4s, so that any HLS player can watch it through the gateway. Each
// file is served whole and of one version (serveObject); one not made yet
// is 404 not_ready with Retry-After while the job runs. A playlist asked
// for with a signed URL has its URIs signed alike (signed.go).
func (g *Gateway) hls(w http.ResponseWriter, r *http.Request) {
	id, file := r.PathValue("id"), r.PathValue("file")
	key, err := blob.HLSFile(id, file)
	switch {
	case errors.Is(err, blob.ErrNoPreviewFile):
		writeError(w, http.StatusNotFound, "not_found", "no such preview file "+file)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	ctype := "video/iso.segment"
	switch path.Ext(file) {
	case ".m3u8":
		ctype = "application/vnd.apple.mpegurl"
	case ".mp4":
		ctype = "video/mp4"
	}
	cache := ""
	if file == "index.m3u8" {
		cache = "no-cache"
	}
	serve := func() error { return g.serveObject(w, r, key, ctype, cache) }
	if file == "index.m3u8" && callerOf(r).Job != "" { // a signed URL: the player asks for the rest with its signature
		serve = func() error { return g.serveSignedPlaylist(w, r, key) }
	}
	switch err := serve(); {
	case errors.Is(err, blob.ErrNotFound):
		g.notMade(r.Context(), w, id, "preview file "+file, retryPreview)
	case err != nil:
		fail(w, err)
	}
}
