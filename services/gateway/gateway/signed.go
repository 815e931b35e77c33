package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
)

// Signed URLs. Players cannot send an API key, and should never hold one:
// /status hands out the preview (/jobs/{id}/hls/index.m3u8) and the video
// (/download/{id}) as gateway URLs carrying ?exp=<unix seconds>&sig=<sig>,
// where sig is the HMAC-SHA256, keyed with SPOOL_GATEWAY_URL_KEY, of
// "spool-url-v1\n<job id>\n<exp>", in base64url without padding. A
// signature covers one job and no method or file: it opens that job's
// preview files and video alone, until exp (SPOOL_GATEWAY_URL_EXPIRY after
// it was made). A signed playlist's segment and init URIs carry the same
// signature, so that a player needs nothing else.

// minURLKey is the shortest SPOOL_GATEWAY_URL_KEY, in bytes.
const minURLKey = 32

// maxExp is the latest exp a URL may name: the last second of year 9999.
const maxExp = 253402300799

// urlSig is the signature of job's URLs valid until exp (unix seconds).
func (g *Gateway) urlSig(job string, exp int64) string {
	m := hmac.New(sha256.New, []byte(g.cfg.URLKey.Reveal()))
	fmt.Fprintf(m, "spool-url-v1\n%s\n%d", job, exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signURL is path, a URL of job's preview or video, signed for
// SPOOL_GATEWAY_URL_EXPIRY from now.
func (g *Gateway) signURL(path, job string) string {
	exp := time.Now().Add(g.cfg.URLExpiry).Unix()
	return path + "?" + url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {g.urlSig(job, exp)}}.Encode()
}

// signedURLs signs the preview and download URLs of v.
func (g *Gateway) signedURLs(v *jobView) {
	if v.DownloadURL != "" {
		v.DownloadURL = g.signURL(v.DownloadURL, v.ID)
	}
	if v.PreviewURL != "" {
		v.PreviewURL = g.signURL(v.PreviewURL, v.ID)
	}
}

// Signature failures, answered 403.
var (
	errSigMalformed = errors.New("the signed URL is malformed: want ?exp=<unix seconds>&sig=<signature>, as /status hands it out")
	errSigInvalid   = errors.New("the signed URL's signature is not valid for this job")
)

// signedForm answers 400 a request whose exp is not a whole number of
// seconds, whether it is signed or carries a key as well (the key then
// authorizes it, and the signature is not checked).
func signedForm(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	if !q.Has("exp") {
		return true
	}
	if exp, err := strconv.ParseInt(q.Get("exp"), 10, 64); err != nil || exp < 0 || exp > maxExp || len(q["exp"]) > 1 {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "exp",
			Message: fmt.Sprintf("exp %q: want the unix seconds /status signed the URL until, once", q.Get("exp"))})
		return false
	}
	return true
}

// checkSigned is nil when r carries a valid, unexpired signature of job.
func (g *Gateway) checkSigned(r *http.Request, job string) error {
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	sig, derr := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if err != nil || derr != nil || len(sig) != sha256.Size {
		return errSigMalformed
	}
	want, _ := base64.RawURLEncoding.DecodeString(g.urlSig(job, exp))
	if !hmac.Equal(sig, want) {
		return errSigInvalid
	}
	if at := time.Unix(exp, 0); time.Now().After(at) {
		return fmt.Errorf("the signed URL expired at %s: ask /status for a new one", at.UTC().Format(time.RFC3339))
	}
	return nil
}

// signedQuery is the exp and sig of a signed request, as a query string.
func signedQuery(r *http.Request) string {
	q := r.URL.Query()
	return url.Values{"exp": {q.Get("exp")}, "sig": {q.Get("sig")}}.Encode()
}

// uriAttr is a URI attribute of an HLS tag (EXT-X-MAP, EXT-X-KEY, ...).
var uriAttr = regexp.MustCompile(`URI="([^"]*)"`)

// signPlaylist appends query to every relative URI of an HLS playlist:
// its segment lines and the URI attributes of its tags (the init
// segment's EXT-X-MAP).
func signPlaylist(playlist []byte, query string) []byte {
	sign := func(uri string) string {
		if uri == "" || strings.Contains(uri, "://") || strings.HasPrefix(uri, "/") {
			return uri
		}
		if strings.Contains(uri, "?") {
			return uri + "&" + query
		}
		return uri + "?" + query
	}
	lines := strings.SplitAfter(string(playlist), "\n")
	for i, line := range lines {
		body := strings.TrimRight(line, "\r\n")
		end := line[len(body):]
		switch {
		case strings.HasPrefix(body, "#"):
			lines[i] = uriAttr.ReplaceAllStringFunc(body, func(m string) string {
				return `URI="` + sign(uriAttr.FindStringSubmatch(m)[1]) + `"`
			}) + end
		case strings.TrimSpace(body) != "":
			lines[i] = sign(strings.TrimSpace(body)) + end
		}
	}
	return []byte(strings.Join(lines, ""))
}

// serveSignedPlaylist serves the playlist at key with its URIs signed as
// the request is (signPlaylist); a missing one is blob.ErrNotFound, and
// nothing is written on an error. Playlists are small: it is read whole,
// from one version.
func (g *Gateway) serveSignedPlaylist(w http.ResponseWriter, r *http.Request, key blob.Key) error {
	var data []byte
	var at time.Time
	for try := 1; ; try++ {
		o, err := g.blob.Open(r.Context(), key)
		if err != nil {
			return err
		}
		data, err = io.ReadAll(io.LimitReader(o, smallObject+1))
		at = o.Info().ModTime
		o.Close()
		if err == nil && len(data) > smallObject {
			return fmt.Errorf("gateway: playlist %s passes %d bytes", key, smallObject)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, blob.ErrChanged) || try == readTries {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", at, bytes.NewReader(signPlaylist(data, signedQuery(r))))
	return nil
}
