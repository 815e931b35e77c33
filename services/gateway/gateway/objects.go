package gateway

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/store"
)

// smallObject is the largest object (bytes) read whole before its answer
// starts; playlists and init segments are far smaller. A larger one is
// streamed, pinned to the version its first bytes came from.
const smallObject = 1 << 20

// readTries is how often an object is read when it keeps changing before
// its answer starts.
const readTries = 3

// Retry-After of a "not yet" answer, in seconds: a preview file comes with
// the next piece, a video with the job's end.
const (
	retryPreview = 1
	retryVideo   = 5
)

// serveObject answers with the object at key, whole and of one version, or
// not at all. A small object is read whole before the answer starts; a
// large one is streamed from one version. Either is read again (up to
// readTries times) when it changes before its first byte goes out, and a
// change after that aborts the answer rather than mix versions. Range,
// If-Range, If-None-Match and HEAD work as for any file
// (http.ServeContent). On an error nothing is written: a missing key is
// blob.ErrNotFound.
func (g *Gateway) serveObject(w http.ResponseWriter, r *http.Request, key blob.Key, ctype, cacheControl string) error {
	saved := w.Header().Clone()
	for try := 1; ; try++ {
		err := g.serveVersion(w, r, key, ctype, cacheControl)
		if err == nil {
			return nil
		}
		clear(w.Header())
		maps.Copy(w.Header(), saved)
		if !errors.Is(err, blob.ErrChanged) || try == readTries {
			return err
		}
	}
}

// serveVersion serves the version of key that one GET finds. It returns an
// error only when nothing has gone out yet.
func (g *Gateway) serveVersion(w http.ResponseWriter, r *http.Request, key blob.Key, ctype, cacheControl string) error {
	o, err := g.blob.Open(r.Context(), key)
	if err != nil {
		return err
	}
	defer o.Close()
	info := o.Info()
	var content io.ReadSeeker = o
	if info.Size <= smallObject {
		data, err := io.ReadAll(o)
		if err != nil {
			return err
		}
		content = bytes.NewReader(data)
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	if info.ETag != "" {
		h.Set("ETag", `"`+info.ETag+`"`)
	}
	if cacheControl != "" {
		h.Set("Cache-Control", cacheControl)
	}
	body, held := &watched{ReadSeeker: content}, &heldHeader{ResponseWriter: w}
	http.ServeContent(held, r, "", info.ModTime, body)
	switch {
	case body.err == nil:
		held.send()
		return nil
	case !held.sent:
		return body.err
	default:
		panic(http.ErrAbortHandler) // the client sees a broken answer, never a short one
	}
}

// heldHeader holds the status line back until the first byte of the body,
// so that an answer that fails before it can still become another.
type heldHeader struct {
	http.ResponseWriter
	status  int
	sent    bool
	refused bool // a 416 went out in the API's error shape: what ServeContent writes after it is dropped
}

func (h *heldHeader) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldHeader) Write(p []byte) (int, error) {
	switch {
	case h.refused:
		return len(p), nil
	case !h.sent && h.status == http.StatusRequestedRangeNotSatisfiable: // ServeContent's own body is plain text
		h.sent, h.refused = true, true
		writeError(h.ResponseWriter, h.status, "out_of_range", fmt.Sprintf("the range asked for lies outside the file (Content-Range: %s)",
			h.Header().Get("Content-Range")))
		return len(p), nil
	}
	h.send()
	return h.ResponseWriter.Write(p)
}

func (h *heldHeader) send() {
	if !h.sent {
		h.sent = true
		h.ResponseWriter.WriteHeader(cmp.Or(h.status, http.StatusOK))
	}
}

// watched remembers the first read error other than io.EOF.
type watched struct {
	io.ReadSeeker
	err error
}

func (r *watched) Read(p []byte) (int, error) {
	n, err := r.ReadSeeker.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// notMade answers for a job's file (what) that is not there: 404
// not_ready with Retry-After while the job runs, since it may come; 410
// deleted when the job's objects were deleted; 404 not_found when the job
// has ended without it or does not exist.
func (g *Gateway) notMade(ctx context.Context, w http.ResponseWriter, id, what string, retry int) {
	j, err := g.store.GetJob(ctx, id)
	switch {
	case err != nil:
		fail(w, err)
	case j.DeletedAt != nil:
		gone(w, j, what)
	case j.State.Terminal():
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("job %s is %s without its %s", id, j.State, what))
	default:
		notReady(w, retry, fmt.Sprintf("job %s is %s: its %s is not made yet", id, j.State, what))
	}
}

// previewURL is the job's playlist once the stitcher has written it, so
// that a player asks only for what exists; empty before.
func (g *Gateway) previewURL(ctx context.Context, j store.Job) string {
	if j.State == store.JobQueued || j.State == store.JobRejected {
		return ""
	}
	key, err := blob.HLSPlaylist(j.ID)
	if err != nil {
		return ""
	}
	if _, err := g.blob.Stat(ctx, key); err != nil {
		return ""
	}
	return "/jobs/" + j.ID + "/hls/index.m3u8"
}
