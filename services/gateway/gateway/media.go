package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/blob"
)

func jsonLine(v any) ([]byte, error) { return json.Marshal(v) }

// hls serves the job's live preview from MinIO: index.m3u8, init.mp4,
// <n>.m4s and an extension's kept input, in<k>.m4s, so that any HLS player can watch it through the gateway. Each
// file is served whole and of one version (serveObject); one not made yet
// is 404 not_ready with Retry-After while the job runs.
func (g *Gateway) hls(w http.ResponseWriter, r *http.Request) {
	id, file := r.PathValue("id"), r.PathValue("file")
	var key blob.Key
	var err error
	var ctype string
	switch {
	case file == "index.m3u8":
		key, err = blob.HLSPlaylist(id)
		ctype = "application/vnd.apple.mpegurl"
	case file == "init.mp4":
		key, err = blob.HLSInit(id)
		ctype = "video/mp4"
	case strings.HasSuffix(file, ".m4s"):
		name, input := strings.CutPrefix(strings.TrimSuffix(file, ".m4s"), "in")
		n, perr := strconv.ParseUint(name, 10, 32)
		if perr != nil {
			writeError(w, http.StatusNotFound, "not_found", "no such preview file "+file)
			return
		}
		if input {
			key, err = blob.HLSInputSegment(id, uint32(n))
		} else {
			key, err = blob.HLSSegment(id, uint32(n))
		}
		ctype = "video/iso.segment"
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such preview file "+file)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	cache := ""
	if file == "index.m3u8" {
		cache = "no-cache"
	}
	switch err := g.serveObject(w, r, key, ctype, cache); {
	case errors.Is(err, blob.ErrNotFound):
		g.notMade(r.Context(), w, id, "preview file "+file, retryPreview)
	case err != nil:
		fail(w, err)
	}
}
