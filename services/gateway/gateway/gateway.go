package gateway

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

//go:embed openapi.yaml
var openapi []byte

//go:embed web
var web embed.FS

// Gateway serves the HTTP API.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	bus     *bus.Bus
	store   *store.Store
	blob    *blob.Store
	public  *blob.Presigner // signs the URLs handed to clients (downloads.go)
	catalog jobspec.Catalog
	mux     *http.ServeMux
	uploads chan struct{} // a slot per upload streamed or completed now
	parts   *partPool     // the part buffers of uploads
	recent  registryCache // the workers registry, as the status of a job reads it
	limits  *limiters     // the tenants' request rates; nil: unlimited (ratelimit.go)
	now     func() time.Time
	keys    *keyring // API key verifications (auth.go)
}

// Routes are the API's routes, as http.ServeMux patterns; the OpenAPI
// document must describe each (a test checks).
var Routes = []string{
	"GET /{$}", "GET /ui/{file...}", "GET /health", "GET /openapi.yaml", "GET /models/info", "POST /generate", "GET /status/{id}", "GET /download/{id}",
	"GET /jobs", "GET /jobs/{id}/events", "POST /jobs/{id}/cancel", "GET /jobs/{id}/lineage", "GET /jobs/{id}/hls/{file}",
	"GET /jobs/{id}/waveform", "DELETE /jobs/{id}", "POST /batches", "GET /batches/{id}",
	"POST /uploads", "GET /uploads/{id}", "POST /uploads/{id}/complete",
	"GET /tenants/{tenant}/quota", "PUT /tenants/{tenant}/quota",
	"POST /keys", "GET /keys", "DELETE /keys/{id}", "GET /audit",
}

// Who may take which route: public routes hold no data; jobRoutes name a
// job, which must be the caller's (tenancy.go); signedRoutes take a signed
// URL instead of a key (signed.go); adminRoutes want an admin key.
var (
	publicRoutes = []string{"GET /health", "GET /openapi.yaml", "GET /{$}", "GET /ui/{file...}"}
	jobRoutes    = []string{"GET /status/{id}", "GET /download/{id}", "GET /jobs/{id}/events", "POST /jobs/{id}/cancel",
		"GET /jobs/{id}/lineage", "GET /jobs/{id}/hls/{file}", "GET /jobs/{id}/waveform", "DELETE /jobs/{id}"}
	signedRoutes = []string{"GET /download/{id}", "GET /jobs/{id}/hls/{file}"}
	adminRoutes  = []string{"POST /keys", "GET /keys", "DELETE /keys/{id}"}
)

// New checks cfg and builds the routes.
func New(cfg Config, b *bus.Bus, s *store.Store, bl *blob.Store, log *slog.Logger, opts ...Option) (*Gateway, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if cfg.BatchMax == 0 {
		cfg.BatchMax = defaultBatchMax
	}
	if cfg.BatchMaxBody == 0 {
		cfg.BatchMaxBody = max(defaultBatchMaxBody, cfg.MaxBody)
	}
	cfg.Uploads = cfg.Uploads.withDefaults()
	if cfg.Downloads == "" {
		cfg.Downloads = DownloadsPresign
	}
	if cfg.URLExpiry == 0 {
		cfg.URLExpiry = time.Hour
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	public, err := publicPresigner(bl, cfg.S3PublicEndpoint)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cat, err := jobspec.LoadRouted(cfg.Catalog.File, cfg.Pools, "SPOOL_GATEWAY_POOLS")
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{cfg: cfg, log: log, bus: b, store: s, blob: bl, public: public, catalog: cat, mux: http.NewServeMux(),
		uploads: make(chan struct{}, cfg.Uploads.Parallel), parts: &partPool{size: cfg.Uploads.PartSize},
		limits: newLimiters(cfg.RateLimit, o.now), now: o.now, keys: newKeyring(max(2, runtime.NumCPU()))}
	handlers := map[string]http.HandlerFunc{
		"GET /{$}": g.dashboard, "GET /ui/{file...}": g.dashboard, "GET /health": g.health, "GET /openapi.yaml": g.openAPI, "GET /models/info": g.modelsInfo, "POST /generate": g.generate,
		"GET /status/{id}": g.status, "GET /download/{id}": g.download, "GET /jobs": g.jobs, "GET /jobs/{id}/events": g.events,
		"POST /jobs/{id}/cancel": g.cancel, "GET /jobs/{id}/lineage": g.lineage, "GET /jobs/{id}/hls/{file}": g.hls,
		"GET /jobs/{id}/waveform": g.waveform, "DELETE /jobs/{id}": g.deleteJob, "POST /batches": g.postBatch, "GET /batches/{id}": g.getBatch,
		"POST /uploads": g.createUpload, "GET /uploads/{id}": g.getUpload, "POST /uploads/{id}/complete": g.completeUpload,
		"POST /keys": g.createKey, "GET /keys": g.listKeys, "DELETE /keys/{id}": g.revokeKey, "GET /audit": g.listAudit,
	}
	maps.Copy(handlers, g.quotaRoutes())
	for _, r := range Routes {
		h := handlers[r]
		if slices.Contains(jobRoutes, r) {
			h = g.jobRoute(h)
		}
		if slices.Contains(adminRoutes, r) {
			h = adminOnly(h)
		}
		if !slices.Contains(publicRoutes, r) {
			h = g.auth(g.limit(h), slices.Contains(signedRoutes, r))
		}
		g.mux.Handle(r, h)
	}
	return g, nil
}

// Handler is the API with its routes. A request no route takes is answered
// in the API's error shape: 405 method_not_allowed with Allow when its path
// has routes for other methods, else 404 not_found.
func (g *Gateway) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := g.mux.Handler(r); pattern == "" {
			g.unrouted(w, r)
			return
		}
		g.mux.ServeHTTP(w, r)
	})
}

func (g *Gateway) unrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		other := *r
		other.Method = m
		if _, pattern := g.mux.Handler(&other); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s (the API: /openapi.yaml)", r.Method, r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
		fmt.Sprintf("%s %s: the path takes %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
}

func (g *Gateway) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openapi)
}

// health checks NATS, Postgres and MinIO.
func (g *Gateway) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"nats": "ok", "postgres": "ok", "minio": "ok"}
	ok := true
	if st := g.bus.Conn().Status(); st != nats.CONNECTED {
		checks["nats"], ok = "not connected: "+st.String(), false
	}
	if err := g.store.Ping(ctx); err != nil {
		checks["postgres"], ok = err.Error(), false
	}
	if err := g.blob.EnsureBucket(ctx); err != nil {
		checks["minio"], ok = err.Error(), false
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ok": ok, "checks": checks})
}

// generate validates a JSON JobSpec and submits it; the job's id comes
// back with the URL of its status.
func (g *Gateway) generate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_argument", fmt.Sprintf("the body exceeds %d bytes", g.cfg.MaxBody))
		return
	}
	spec, err := decodeSpec(body)
	if err != nil {
		fail(w, err)
		return
	}
	// The job is the key's tenant's; an admin's names it with ?tenant= or
	// the spec's tenant.
	tenant, ok := readScope(w, r)
	if !ok {
		return
	}
	c := callerOf(r)
	if tenant == "" {
		tenant = cmp.Or(spec.GetTenant(), c.Tenant)
	}
	if !c.Admin && spec.GetTenant() != "" && spec.GetTenant() != tenant {
		refuseTenant(w, c, spec.GetTenant())
		return
	}
	if err := withTenant(spec, tenant, "the request's"); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "tenant", Message: err.Error()})
		return
	}
	// A caller that sends a W3C traceparent sees the job in its own trace.
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	id, published, err := g.submit(ctx, spec)
	if err != nil {
		fail(w, err)
		return
	}
	if published {
		g.awaitRecorded(r.Context(), id)
	}
	g.audit(r.Context(), r, tenant, actionJobSubmit, id, nil)
	accepted(w, id)
}

// accepted is the answer to a submission of job id.
func accepted(w http.ResponseWriter, id string) {
	w.Header().Set("Location", "/status/"+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status_url": "/status/" + id, "events_url": "/jobs/" + id + "/events"})
}

// jobView is a job as the API shows it.
type jobView struct {
	ID            string      `json:"id"`
	State         string      `json:"state"`
	Progress      float64     `json:"progress"`
	SegmentsDone  int         `json:"segments_done"`
	SegmentsTotal int         `json:"segments_total"`
	Live          bool        `json:"live"`
	Frames        int64       `json:"frames"`       // made: the final video's, else the committed segments'
	FramesTotal   int64       `json:"frames_total"` // planned; 0 when live
	DurationS     float64     `json:"duration_s"`   // of the frames made
	FPS           int         `json:"fps"`
	Width         int         `json:"width"`
	Height        int         `json:"height"`
	Model         string      `json:"model"`
	Tenant        string      `json:"tenant"`
	Pool          string      `json:"pool"`
	ErrorCode     string      `json:"error_code,omitempty"`
	ErrorField    string      `json:"error_field,omitempty"`
	ErrorMessage  string      `json:"error_message,omitempty"`
	FinalBytes    int64       `json:"final_bytes,omitempty"`
	PreviewURL    string      `json:"preview_url,omitempty"` // in /status, once the playlist exists
	DownloadURL   string      `json:"download_url,omitempty"`
	VideoURL      string      `json:"video_url,omitempty"` // presigned, an hour
	Cues          []cueView   `json:"cues,omitempty"`      // /status only: where the timeline's prompts take over
	Inputs        *inputsView `json:"inputs,omitempty"`    // /status only: the uploads it is made from
	Audio         *audioView  `json:"audio,omitempty"`     // /status only: its sound, when it has one (waveform.go)
	CreatedAt     time.Time   `json:"created_at"`
	FinishedAt    *time.Time  `json:"finished_at,omitempty"`
	DeletedAt     *time.Time  `json:"deleted_at,omitempty"` // its objects are gone; its lineage stays
	jobRuns                   // the models that made it, what it waits for (models.go)
}

func view(j store.Job) jobView {
	v := jobView{ID: j.ID, State: string(j.State), Progress: j.Progress, SegmentsDone: j.SegmentsDone, SegmentsTotal: j.SegmentsTotal,
		Live: j.Live, Frames: j.FramesMade(), FramesTotal: j.TotalFrames, FPS: j.FPS, Width: j.Width, Height: j.Height, Model: j.Model, Tenant: j.Tenant, Pool: j.Pool,
		ErrorCode: j.ErrorCode, ErrorField: j.ErrorField, ErrorMessage: j.ErrorMessage, FinalBytes: j.FinalBytes,
		CreatedAt: j.CreatedAt, FinishedAt: j.FinishedAt, DeletedAt: j.DeletedAt}
	if j.FPS > 0 {
		v.DurationS = float64(v.Frames) / float64(j.FPS)
	}
	if j.FinalKey != "" && j.DeletedAt == nil {
		v.DownloadURL = "/download/" + j.ID
	}
	return v
}

// status shows a job; one the gateway accepted and no dispatcher has
// recorded yet is in state submitted.
func (g *Gateway) status(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "job")
	if !ok {
		return
	}
	v, j, recorded, err := g.jobOrSubmission(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	if !recorded {
		writeJSON(w, http.StatusOK, v)
		return
	}
	v.Cues = cueViews(j.Spec, j.TotalFrames, g.catalog)
	v.Inputs = inputsOf(j.Spec)
	v.Audio = audioOf(j, v.Inputs)
	if j.DeletedAt == nil {
		v.PreviewURL = g.previewURL(r.Context(), j)
	}
	if err := g.modelStatus(r.Context(), &v, j); err != nil {
		fail(w, err)
		return
	}
	if j.FinalKey != "" && j.DeletedAt == nil { // for players, which cannot send the token
		v.VideoURL = g.videoURL(r.Context(), j)
	}
	g.signedURLs(&v)
	writeJSON(w, http.StatusOK, v)
}

// dashboard serves the web dashboard: / and its files under /ui/.
func (g *Gateway) dashboard(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	data, err := web.ReadFile("web/" + name)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no such file "+name)
		return
	}
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
		"": "text/plain; charset=utf-8"}
	w.Header().Set("Content-Type", types[path.Ext(name)])
	_, _ = w.Write(data)
}

// download answers with the final MP4 (sendVideo: a redirect to a
// presigned URL, or the bytes); while the job runs it answers 404
// not_ready with Retry-After, 409 with the job's state when it ended
// without one, and 410 deleted once its objects are deleted.
func (g *Gateway) download(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "job")
	if !ok {
		return
	}
	j, err := g.store.GetJob(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	switch {
	case j.DeletedAt != nil:
		gone(w, j, "video")
		return
	case j.FinalKey == "" && !j.State.Terminal():
		notReady(w, retryVideo, fmt.Sprintf("job %s is %s: its video is not made yet", j.ID, j.State))
		return
	case j.FinalKey == "":
		writeJSON(w, http.StatusConflict, apiError{Code: "failed_precondition",
			Message: fmt.Sprintf("job %s is %s without a video", j.ID, j.State)})
		return
	}
	g.sendVideo(w, r, j)
}

// jobs lists jobs newest first; ?limit=1..1000, ?state=, ?after=<cursor>.
func (g *Gateway) jobs(w http.ResponseWriter, r *http.Request) {
	tenant, ok := readScope(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := store.ListJobsParams{State: store.JobState(q.Get("state")), Tenant: tenant}
	if p.State != "" && !slices.Contains(store.JobStates, p.State) {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "state",
			Message: fmt.Sprintf("state %q: want one of %s, or none for every state", p.State, jobStates())})
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "limit", Message: fmt.Sprintf("limit %q: want 1..1000", s)})
			return
		}
		p.Limit = n
	}
	if s := q.Get("after"); s != "" {
		c, err := parseCursor(s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "after", Message: err.Error()})
			return
		}
		p.After = &c
	}
	js, next, err := g.store.ListJobs(r.Context(), p)
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Jobs []jobView `json:"jobs"`
		Next string    `json:"next,omitempty"`
	}{Jobs: make([]jobView, len(js))}
	for i, j := range js {
		out.Jobs[i] = view(j)
		g.signedURLs(&out.Jobs[i])
	}
	if next != nil {
		out.Next = next.CreatedAt.UTC().Format(time.RFC3339Nano) + "~" + next.ID
	}
	writeJSON(w, http.StatusOK, out)
}

func parseCursor(s string) (store.Cursor, error) {
	at, id, ok := strings.Cut(s, "~")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || !ident.Valid(id) {
		return store.Cursor{}, fmt.Errorf("after %q: want the 'next' value of the previous page", s)
	}
	return store.Cursor{CreatedAt: t, ID: id}, nil
}

// cancel asks the dispatcher to cancel the job. A job still submitted
// (no dispatcher has recorded it) is 404 not_ready: ask again shortly.
func (g *Gateway) cancel(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "job")
	if !ok {
		return
	}
	_, j, recorded, err := g.jobOrSubmission(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	if !recorded {
		notReady(w, 1, fmt.Sprintf("job %s is submitted, and no dispatcher has recorded it yet: cancel it again in a moment", id))
		return
	}
	if j.State.Terminal() {
		writeJSON(w, http.StatusConflict, apiError{Code: "failed_precondition", Message: fmt.Sprintf("job %s is already %s", id, j.State)})
		return
	}
	if err := g.bus.PublishCancel(r.Context(), id); err != nil {
		fail(w, err)
		return
	}
	g.audit(r.Context(), r, j.Tenant, actionJobCancel, id, map[string]any{"state": string(j.State)})
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status_url": "/status/" + id})
}

// lineage is every segment with its attempts: worker, GPU, timings.
func (g *Gateway) lineage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "job")
	if !ok {
		return
	}
	if _, err := g.store.GetJob(r.Context(), id); err != nil {
		fail(w, err)
		return
	}
	segs, err := g.store.ListSegments(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	type segView struct {
		Index            int             `json:"index"`
		FirstFrame       int64           `json:"first_frame"`
		Frames           int             `json:"frames"`
		Overlap          int             `json:"overlap"` // its first frames, shared with the segment before
		State            string          `json:"state"`
		CommittedAttempt int             `json:"committed_attempt,omitempty"`
		Attempts         []store.Attempt `json:"attempts"`
	}
	out := make([]segView, len(segs))
	for i, s := range segs {
		a, err := g.store.ListAttempts(r.Context(), id, s.Index)
		if err != nil {
			fail(w, err)
			return
		}
		out[i] = segView{Index: s.Index, FirstFrame: s.FirstFrame, Frames: s.Frames - s.Trim, Overlap: s.Overlap, State: string(s.State),
			CommittedAttempt: s.CommittedAttempt, Attempts: a}
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "segments": out})
}

// events streams the job's events as Server-Sent Events: its state now
// (submitted while no dispatcher has recorded it), then each event until
// the job ends. They come over core NATS, which needs no stream: a NATS
// that lost its store still carries them.
func (g *Gateway) events(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	subject, err := bus.EventsSubject(id)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	ch := make(chan *nats.Msg, 64)
	sub, err := g.bus.Conn().ChanSubscribe(subject, ch)
	if err != nil {
		fail(w, err)
		return
	}
	defer sub.Unsubscribe()
	first, j, recorded, err := g.jobOrSubmission(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming is not supported here")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) {
		data, _ := jsonLine(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		fl.Flush()
	}
	g.signedURLs(&first)
	send("status", first)
	if recorded && j.State.Terminal() {
		return
	}
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case m := <-ch:
			ev, err := bus.DecodeEvent(m.Data)
			if err != nil {
				continue
			}
			data, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
			fmt.Fprintf(w, "event: job\ndata: %s\n\n", data)
			fl.Flush()
			switch ev.GetState() {
			case spoolv1.JobState_JOB_STATE_SUCCEEDED, spoolv1.JobState_JOB_STATE_FAILED, spoolv1.JobState_JOB_STATE_CANCELLED,
				spoolv1.JobState_JOB_STATE_REJECTED:
				if j, err := g.store.GetJob(r.Context(), id); err == nil {
					v := view(j)
					g.signedURLs(&v)
					send("status", v)
				}
				return
			}
		}
	}
}

// jobStates lists the job states, comma-separated.
func jobStates() string {
	names := make([]string, len(store.JobStates))
	for i, st := range store.JobStates {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}
