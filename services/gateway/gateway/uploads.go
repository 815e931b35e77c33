package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/media"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Uploads. A client sends media either as the body of POST /uploads,
// which the gateway streams into MinIO, or, announced by a JSON body,
// through a presigned PUT that POST /uploads/{id}/complete then takes in.
// Either way the bytes are hashed and probed (media.ProbeUpload) before
// the upload is ready; the same bytes of a tenant are stored once; and a
// refused upload leaves neither object nor row. An upload is its key's
// tenant's (an admin's: ?tenant=, else its own), and another tenant's is
// answered as a missing one (tenancy.go).

// uploadView is an upload as the API shows it.
type uploadView struct {
	ID          string     `json:"id"`
	Tenant      string     `json:"tenant"`
	State       string     `json:"state"`
	ContentType string     `json:"content_type"`
	Kind        string     `json:"kind"`
	Format      string     `json:"format,omitempty"`
	Codec       string     `json:"codec"`
	Width       int        `json:"width"`
	Height      int        `json:"height"`
	FPS         float64    `json:"fps"`
	Frames      int64      `json:"frames"`
	DurationS   float64    `json:"duration_s"`
	AudioCodec  string     `json:"audio_codec,omitempty"`
	SampleRate  int        `json:"sample_rate"`
	Channels    int        `json:"channels"`
	SHA256      string     `json:"sha256"`
	Bytes       int64      `json:"bytes"`
	MaxBytes    int64      `json:"max_bytes,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	DeletedAt   *time.Time `json:"deleted_at,omitempty"` // retention removed its objects
}

func viewUpload(u store.Upload) uploadView {
	v := uploadView{ID: u.ID, Tenant: u.Tenant, State: string(u.State), ContentType: u.ContentType, Kind: u.Kind, Codec: u.Codec,
		Width: u.Width, Height: u.Height, FPS: u.FPS, Frames: u.Frames, DurationS: u.DurationS, SampleRate: u.SampleRate,
		Channels: u.Channels, SHA256: u.SHA256, Bytes: u.Bytes, CreatedAt: u.CreatedAt, CompletedAt: u.CompletedAt, ExpiresAt: u.ExpiresAt,
		DeletedAt: u.DeletedAt}
	if u.State == store.UploadPending {
		v.MaxBytes = u.MaxBytes
	}
	var p media.UploadProbe
	if json.Unmarshal(u.Probe, &p) == nil {
		v.Format, v.AudioCodec = p.Format, p.AudioCodec
	}
	return v
}

// mediaTypes says in words which Content-Types POST /uploads takes.
const mediaTypes = "image/*, video/*, audio/* or application/octet-stream for the file itself, application/json to announce a presigned upload"

// isMediaType reports whether a Content-Type (parameters dropped) may be
// an upload's.
func isMediaType(ct string) bool {
	major, _, _ := strings.Cut(ct, "/")
	return ct == "application/octet-stream" || (major == "image" || major == "video" || major == "audio") && len(ct) > len(major)+1
}

// refuseUpload answers an upload refused for what was sent.
func refuseUpload(w http.ResponseWriter, status int, reason, field, msg string) {
	writeJSON(w, status, apiError{Code: "invalid_argument", Message: msg, Field: field, Reason: reason})
}

// queryTenant is the request's ?tenant=, checked; "" when it names none.
// Whether the request may name it is readScope's to say.
func queryTenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	t := r.URL.Query().Get("tenant")
	if t != "" && !ident.Valid(t) {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "tenant",
			Message: fmt.Sprintf("tenant %q: want %s, or none for %q", t, ident.Rule, jobspec.DefaultTenant)})
		return "", false
	}
	return t, true
}

// withTenant gives spec the request's tenant: a spec naming none takes it,
// one naming another is refused (the message says so); what names the
// tenant, for the message, is e.g. "the request's".
func withTenant(spec *spoolv1.JobSpec, tenant, whose string) error {
	switch {
	case spec.GetTenant() == "":
		if tenant != jobspec.DefaultTenant {
			spec.Tenant = tenant
		}
	case spec.GetTenant() != tenant:
		return fmt.Errorf("tenant %q: %s tenant is %q (?tenant=); leave the spec's empty, or name the same", spec.GetTenant(), whose, tenant)
	}
	return nil
}

// uploadRef is the request's upload {id}, checked, and its tenant as the
// request may see it: a tenant's key's own, an admin's ?tenant=, else the
// upload's own (none, "", when there is no such upload: GetUpload then
// finds none).
func (g *Gateway) uploadRef(w http.ResponseWriter, r *http.Request) (tenant, id string, ok bool) {
	if tenant, ok = readScope(w, r); !ok {
		return "", "", false
	}
	if id, ok = uploadID(w, r); !ok {
		return "", "", false
	}
	if tenant == "" {
		t, err := g.store.UploadTenant(r.Context(), id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			fail(w, err)
			return "", "", false
		}
		tenant = t
	}
	return tenant, id, true
}

// uploadID is the request's {id}, checked.
func uploadID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if err := blob.ValidateUploadID(id); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "id", Message: err.Error()})
		return "", false
	}
	return id, true
}

// admitUpload takes one of the slots of uploads streamed or completed at
// once, or answers 503.
func (g *Gateway) admitUpload(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case g.uploads <- struct{}{}:
		return func() { <-g.uploads }, true
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable",
			fmt.Sprintf("%d uploads are under way, as many as SPOOL_GATEWAY_UPLOAD_PARALLEL allows: try again", cap(g.uploads)))
		return nil, false
	}
}

// createUpload is POST /uploads: the file itself, streamed, or a JSON
// announcement of a presigned upload.
func (g *Gateway) createUpload(w http.ResponseWriter, r *http.Request) {
	tenant, ok := ownerTenant(w, r)
	if !ok {
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/json":
		g.presignUpload(w, r, tenant)
	case isMediaType(ct):
		g.streamUpload(w, r, tenant, ct)
	default:
		refuseUpload(w, http.StatusUnsupportedMediaType, "content_type", "Content-Type",
			fmt.Sprintf("Content-Type %q: want %s", r.Header.Get("Content-Type"), mediaTypes))
	}
}

// streamUpload stores the body as a new upload's source, then takes it in.
func (g *Gateway) streamUpload(w http.ResponseWriter, r *http.Request, tenant, ct string) {
	limit := g.cfg.Uploads.MaxBytes
	if r.ContentLength > limit {
		refuseUpload(w, http.StatusRequestEntityTooLarge, "too_large", "body", tooLarge(r.ContentLength, limit))
		return
	}
	release, ok := g.admitUpload(w)
	if !ok {
		return
	}
	defer release()
	ctx := r.Context()
	id := blob.NewUploadID()
	key, err := blob.UploadSource(tenant, id)
	if err != nil {
		fail(w, err)
		return
	}
	exp := time.Now().Add(g.cfg.Uploads.URLExpiry)
	if err := g.store.CreateUpload(ctx, store.Upload{ID: id, Tenant: tenant, ObjectKey: string(key), ContentType: ct, ExpiresAt: &exp}); err != nil {
		fail(w, err)
		return
	}
	s, err := streamTo(ctx, g.blob, key, r.Body, limit, g.parts, ct)
	if err != nil || s.Bytes == 0 {
		g.dropUpload(ctx, tenant, id)
	}
	var re *readError
	switch {
	case errors.Is(err, errTooLarge):
		refuseUpload(w, http.StatusRequestEntityTooLarge, "too_large", "body", fmt.Sprintf("the body passes %d bytes: want at most %d (SPOOL_GATEWAY_UPLOAD_MAX_BYTES)", limit, limit))
	case errors.As(err, &re):
		refuseUpload(w, http.StatusBadRequest, "incomplete", "body", re.Error())
	case err != nil:
		fail(w, err)
	case s.Bytes == 0:
		refuseUpload(w, http.StatusBadRequest, media.UploadEmpty, "body", "the body is empty: want the bytes of an image, a video or an audio file")
	default:
		g.takeIn(w, r, tenant, id, key, s)
	}
}

func tooLarge(n, limit int64) string {
	return fmt.Sprintf("the upload is %d bytes: want at most %d (SPOOL_GATEWAY_UPLOAD_MAX_BYTES)", n, limit)
}

// takeIn makes a streamed upload ready: the bytes of a ready upload of
// the tenant already are answered with it (200) and not stored twice;
// others are probed and recorded. Bytes the probe refuses are deleted
// with their row (400).
func (g *Gateway) takeIn(w http.ResponseWriter, r *http.Request, tenant, id string, key blob.Key, s streamed) {
	ctx := r.Context()
	if same, err := g.store.FindReadyUpload(ctx, tenant, s.SHA256); err == nil {
		g.dropUpload(ctx, tenant, id)
		writeJSON(w, http.StatusOK, viewUpload(same))
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		g.dropUpload(ctx, tenant, id)
		fail(w, err)
		return
	}
	p, err := g.probe(ctx, key)
	if err != nil {
		g.dropUpload(ctx, tenant, id)
		g.probeFailed(w, tenant, id, err)
		return
	}
	g.record(w, r, tenant, id, key, s, p, false)
}

// probeFailed answers a probe that failed: 400 with the reason for a file
// it refused, else as fail does.
func (g *Gateway) probeFailed(w http.ResponseWriter, tenant, id string, err error) {
	if ue, ok := media.AsUploadError(err); ok {
		g.log.Info("upload refused", "upload", id, "tenant", tenant, "reason", ue.Code, "error", ue.Message)
		refuseUpload(w, http.StatusBadRequest, ue.Code, "body", ue.Message)
		return
	}
	fail(w, err)
}

// record makes the probed upload ready (201), or answers with the upload
// of the same bytes that was made ready first (200), deleting this one's
// object. A failure to record drops the upload, unless retry says that
// the client may complete it again.
func (g *Gateway) record(w http.ResponseWriter, r *http.Request, tenant, id string, key blob.Key, s streamed, p media.UploadProbe, retry bool) {
	ctx := r.Context()
	raw, _ := json.Marshal(p)
	u, created, err := g.store.MarkUploadReady(ctx, tenant, id, store.UploadProbe{Kind: p.Kind, Codec: p.Codec, Width: p.Width,
		Height: p.Height, FPS: p.FPS, Frames: p.Frames, DurationS: p.DurationS, SampleRate: p.SampleRate, Channels: p.Channels,
		SHA256: s.SHA256, Bytes: s.Bytes, Probe: raw})
	switch {
	case err != nil:
		if !retry {
			g.dropUpload(ctx, tenant, id)
		}
		fail(w, err)
	case created:
		g.log.Info("upload ready", "upload", id, "tenant", tenant, "kind", p.Kind, "bytes", s.Bytes)
		w.Header().Set("Location", "/uploads/"+id)
		writeJSON(w, http.StatusCreated, viewUpload(u))
	case u.ID != id: // the same bytes were made ready first
		g.deleteObject(ctx, key)
		writeJSON(w, http.StatusOK, viewUpload(u))
	default: // completed by a request before this one
		writeJSON(w, http.StatusOK, viewUpload(u))
	}
}

// hashObject reads key whole for its SHA-256 and size.
func (g *Gateway) hashObject(ctx context.Context, key blob.Key) (streamed, error) {
	rd, err := g.blob.Open(ctx, key)
	if err != nil {
		return streamed{}, err
	}
	defer rd.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, rd, make([]byte, 256<<10))
	if err != nil {
		return streamed{}, fmt.Errorf("gateway: hash %s: %w", key, err)
	}
	return streamed{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// probe runs media.ProbeUpload on the object through a presigned GET of
// the gateway's own endpoint: ffprobe runs here, inside the cluster.
func (g *Gateway) probe(ctx context.Context, key blob.Key) (media.UploadProbe, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Uploads.Probe)
	defer cancel()
	u, err := g.blob.PresignGet(ctx, key, g.cfg.Uploads.Probe+time.Minute)
	if err != nil {
		return media.UploadProbe{}, err
	}
	return media.ProbeUpload(ctx, u.String(), media.UploadLimits{MaxPixels: g.cfg.Uploads.MaxPixels, MaxDurationS: jobspec.MaxDurationS})
}

// dropUpload deletes a refused upload: its objects, then its pending row.
// It goes on when the request's context has ended, so that a client that
// hangs up leaves nothing either. A presigned upload's row stays, pending
// until its URL lapses: retention then deletes whatever the URL let in
// after this (a PUT again), with the row.
func (g *Gateway) dropUpload(ctx context.Context, tenant, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, key := range []func(string, string) (blob.Key, error){blob.UploadSource, blob.UploadIncoming} {
		if k, err := key(tenant, id); err == nil {
			g.deleteObject(ctx, k)
		}
	}
	if u, err := g.store.GetUpload(ctx, tenant, id); err == nil && u.MaxBytes > 0 { // presigned
		return
	}
	if err := g.store.DeleteUpload(ctx, tenant, id); err != nil {
		g.log.Warn("a refused upload's row is left", "upload", id, "error", err)
	}
}

func (g *Gateway) deleteObject(ctx context.Context, key blob.Key) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := g.blob.Delete(ctx, key); err != nil {
		g.log.Warn("an upload's object is left", "key", key, "error", err)
	}
}

// presignRequest announces a presigned upload.
type presignRequest struct {
	Bytes       int64  `json:"bytes"`
	ContentType string `json:"content_type"`
}

// presignUpload records a pending upload and answers the URL its bytes
// are PUT to.
func (g *Gateway) presignUpload(w http.ResponseWriter, r *http.Request, tenant string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_argument", fmt.Sprintf("the body exceeds %d bytes", g.cfg.MaxBody))
		return
	}
	var req presignRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument",
			Message: fmt.Sprintf("the body: %v; want {\"bytes\": the file's size, \"content_type\": its media type}", err)})
		return
	}
	limit := g.cfg.Uploads.MaxBytes
	switch {
	case req.Bytes < 1:
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "bytes",
			Message: fmt.Sprintf("bytes %d: want the file's size, 1..%d", req.Bytes, limit)})
		return
	case req.Bytes > limit:
		refuseUpload(w, http.StatusRequestEntityTooLarge, "too_large", "bytes", tooLarge(req.Bytes, limit))
		return
	}
	if req.ContentType == "" {
		req.ContentType = "application/octet-stream"
	}
	ct, _, err := mime.ParseMediaType(req.ContentType)
	if err != nil || !isMediaType(ct) {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "content_type",
			Message: fmt.Sprintf("content_type %q: want image/*, video/*, audio/* or application/octet-stream", req.ContentType)})
		return
	}
	req.ContentType = ct
	ctx := r.Context()
	id := blob.NewUploadID()
	src, err := blob.UploadSource(tenant, id)
	if err != nil {
		fail(w, err)
		return
	}
	in, _ := blob.UploadIncoming(tenant, id)
	exp := time.Now().Add(g.cfg.Uploads.URLExpiry).UTC().Truncate(time.Second)
	url, ok := g.uploadURL(w, r, in, g.cfg.Uploads.URLExpiry)
	if !ok {
		return
	}
	if err := g.store.CreateUpload(ctx, store.Upload{ID: id, Tenant: tenant, ObjectKey: string(src), ContentType: req.ContentType,
		MaxBytes: req.Bytes, ExpiresAt: &exp}); err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Location", "/uploads/"+id)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "upload_url": url, "method": http.MethodPut, "expires_at": exp,
		"complete_url": "/uploads/" + id + "/complete"})
}

// completeUpload is POST /uploads/{id}/complete: the bytes PUT to the
// presigned URL, no more than announced, are copied into the upload's
// source inside MinIO (a PUT after this changes nothing of the upload),
// then hashed and probed at once, and recorded. An upload already ready is
// answered as it is; one whose completion failed along the way (not for
// its bytes) may be completed again.
func (g *Gateway) completeUpload(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := g.uploadRef(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	u, err := g.store.GetUpload(ctx, tenant, id)
	if err != nil {
		fail(w, err)
		return
	}
	in, _ := blob.UploadIncoming(tenant, id)
	switch {
	case u.DeletedAt != nil:
		writeError(w, http.StatusGone, "deleted", fmt.Sprintf("upload %s was deleted at %s", id, u.DeletedAt.UTC().Format(time.RFC3339)))
		return
	case u.State == store.UploadReady:
		g.deleteObject(ctx, in) // a PUT after the completion, if any
		writeJSON(w, http.StatusOK, viewUpload(u))
		return
	case u.SameAs != "": // completed before: its bytes were those of another upload
		g.deleteObject(ctx, in)
		same, err := g.store.GetUpload(ctx, tenant, u.SameAs)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, viewUpload(same))
		return
	case u.ExpiresAt != nil && time.Now().After(*u.ExpiresAt):
		writeError(w, http.StatusGone, "deleted", fmt.Sprintf("upload %s lapsed at %s, uncompleted, and is left for retention to delete: announce the file again",
			id, u.ExpiresAt.UTC().Format(time.RFC3339)))
		return
	}
	src := blob.Key(u.ObjectKey)
	copied := false
	st, err := g.blob.Stat(ctx, in)
	if errors.Is(err, blob.ErrNotFound) { // or copied in by a completion that failed later
		st, err = g.blob.Stat(ctx, src)
		copied = err == nil
	}
	switch {
	case errors.Is(err, blob.ErrNotFound):
		writeJSON(w, http.StatusConflict, apiError{Code: "failed_precondition",
			Message: fmt.Sprintf("upload %s has no bytes yet: PUT the file to its upload_url first (until %s)", id, u.ExpiresAt.Format(time.RFC3339))})
		return
	case err != nil:
		fail(w, err)
		return
	case st.Size > u.MaxBytes:
		g.dropUpload(ctx, tenant, id)
		refuseUpload(w, http.StatusRequestEntityTooLarge, "too_large", "body", fmt.Sprintf("%d bytes were PUT: want at most the %d announced", st.Size, u.MaxBytes))
		return
	case st.Size == 0:
		g.dropUpload(ctx, tenant, id)
		refuseUpload(w, http.StatusBadRequest, media.UploadEmpty, "body", "the file PUT is empty: want the bytes of an image, a video or an audio file")
		return
	}
	release, ok := g.admitUpload(w)
	if !ok {
		return
	}
	defer release()
	if !copied {
		_, err := g.blob.Copy(ctx, in, src, st.ETag)
		if errors.Is(err, blob.ErrChanged) {
			writeJSON(w, http.StatusConflict, apiError{Code: "failed_precondition",
				Message: fmt.Sprintf("upload %s: the file was PUT again while it was completed: complete it again", id)})
			return
		}
		if err != nil {
			fail(w, err)
			return
		}
		g.deleteObject(ctx, in)
	}
	var s streamed
	var herr error
	hashed := make(chan struct{})
	go func() { defer close(hashed); s, herr = g.hashObject(ctx, src) }()
	p, perr := g.probe(ctx, src)
	<-hashed
	if _, refused := media.AsUploadError(perr); refused {
		g.dropUpload(ctx, tenant, id)
		g.probeFailed(w, tenant, id, perr)
		return
	}
	if err := errors.Join(perr, herr); err != nil {
		fail(w, err)
		return
	}
	g.record(w, r, tenant, id, src, s, p, true)
}

// getUpload is GET /uploads/{id}.
func (g *Gateway) getUpload(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := g.uploadRef(w, r)
	if !ok {
		return
	}
	u, err := g.store.GetUpload(r.Context(), tenant, id)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewUpload(u))
}
