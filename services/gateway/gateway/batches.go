package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/store"
	spoolv1 "github.com/spoolvideo/spool/proto/spool/v1"
)

// Batch limits. A batch's jobs without an id of their own are named
// "<batch>-<index>", which must stay a valid job id: the batch id leaves
// room for a dash and the digits of the largest index.
const (
	maxBatchCount   = 100_000
	maxBatchIDLen   = ident.MaxLen - len("-99999")
	batchSubmitters = 8 // specs submitted at once
)

// errUnsupportedBatch is a batch body of a content type that is neither
// JSON nor JSON Lines.
var errUnsupportedBatch = errors.New("gateway: unsupported batch content type")

// batchItemView is what became of one spec of a batch.
type batchItemView struct {
	Index    int        `json:"index"`
	ID       string     `json:"id,omitempty"`
	Error    *apiError  `json:"error,omitempty"`
	State    string     `json:"state,omitempty"`    // GET only; "submitted" until the dispatcher records the job
	Progress *float64   `json:"progress,omitempty"` // GET only
	Deleted  *time.Time `json:"deleted_at,omitempty"`
}

// postBatch submits the job specs of the body, a JSON array or JSON Lines
// (one spec a line), each validated and submitted as POST /generate does.
// Refused specs do not stop the others: each is answered at its index. It
// answers 201 when every spec became a job, 207 when some did not.
func (g *Gateway) postBatch(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	tenant, ok := ownerTenant(w, r)
	if !ok {
		return
	}
	switch {
	case id == "":
		id = newID("b")
	case !ident.Valid(id) || len(id) > maxBatchIDLen:
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Field: "id",
			Message: fmt.Sprintf("batch id %q: want %s, at most %d long", id, ident.Rule, maxBatchIDLen)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.BatchMaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_argument",
			fmt.Sprintf("the body exceeds %d bytes (SPOOL_GATEWAY_BATCH_MAX_BODY)", g.cfg.BatchMaxBody))
		return
	}
	specs, err := splitBatch(body, r.Header.Get("Content-Type"))
	switch {
	case errors.Is(err, errUnsupportedBatch):
		writeError(w, http.StatusUnsupportedMediaType, "invalid_argument", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	case len(specs) == 0:
		writeError(w, http.StatusBadRequest, "invalid_argument", "the batch has no job spec: send a JSON array of specs, or one spec a line")
		return
	case len(specs) > g.cfg.BatchMax:
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_argument",
			fmt.Sprintf("the batch has %d job specs: want 1..%d (SPOOL_GATEWAY_BATCH_MAX)", len(specs), g.cfg.BatchMax))
		return
	}
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	items, other, published, retry := g.submitBatch(ctx, id, tenant, specs)
	if other >= 0 { // a spec names a job made with another spec: a retry of this batch with other specs?
		if _, err := g.store.GetBatch(r.Context(), id); err == nil {
			writeJSON(w, http.StatusConflict, apiError{Code: "already_exists", Field: "id", Message: fmt.Sprintf(
				"batch %s exists, and spec %d differs from the job it made (%s): retry a batch with the same specs, or choose another id",
				id, other, items[other].ErrorMessage)})
			return
		}
	}
	b := store.Batch{ID: id, Tenant: tenant, Jobs: len(specs), Items: items}
	saved, err := g.store.SaveBatch(r.Context(), b)
	if errors.Is(err, store.ErrConflict) {
		writeJSON(w, http.StatusConflict, apiError{Code: "already_exists", Field: "id", Message: err.Error() +
			": retry it with the same specs and tenant, or choose another id"})
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	out := batchAnswer{BatchID: id, StatusURL: "/batches/" + id, Jobs: make([]batchItemView, len(saved.Items))}
	status := http.StatusCreated
	for i, it := range saved.Items {
		out.Jobs[i] = itemView(it)
		if it.JobID == "" {
			status = http.StatusMultiStatus
		}
	}
	if len(published) > 0 {
		g.awaitRecorded(r.Context(), published...)
	}
	if retry > 0 { // specs a quota refused: when to send the batch again
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	made := 0
	for _, it := range saved.Items {
		if it.JobID != "" {
			made++
		}
	}
	g.audit(r.Context(), r, tenant, actionBatchSubmit, id, map[string]any{"specs": len(saved.Items), "accepted": made})
	w.Header().Set("Location", out.StatusURL)
	writeJSON(w, status, out)
}

// batchAnswer is the answer to POST /batches.
type batchAnswer struct {
	BatchID   string          `json:"batch_id"`
	StatusURL string          `json:"status_url"`
	Jobs      []batchItemView `json:"jobs"`
}

func itemView(it store.BatchItem) batchItemView {
	v := batchItemView{Index: it.Index, ID: it.JobID}
	if it.JobID == "" {
		v.Error = &apiError{Code: it.ErrorCode, Field: it.ErrorField, Message: it.ErrorMessage}
	}
	return v
}

// submitBatch decodes, checks and submits each spec of a batch and returns
// what became of each. A spec without an id gets "<batch>-<index>", and one
// without a tenant the batch's, so that the same batch sent again (a retry)
// names the same jobs and submits nothing twice.
// other is the first index whose id names an existing job with another
// spec, -1 when none does; published are the jobs whose submission went
// out on NATS as well as into Postgres; retryAfter is the least Retry-After
// of the specs a quota refused (resource_exhausted), seconds, 0 when none.
func (g *Gateway) submitBatch(ctx context.Context, batch, tenant string, specs []json.RawMessage) (items []store.BatchItem, other int,
	published []string, retryAfter int) {
	items = make([]store.BatchItem, len(specs))
	others := make([]bool, len(specs))
	sent := make([]bool, len(specs))
	retries := make([]int, len(specs))
	refuse := func(i int, err error) {
		_, e := problem(err)
		items[i] = store.BatchItem{Index: i, ErrorCode: e.Code, ErrorField: e.Field, ErrorMessage: e.Message}
		var qe *quotaError
		if errors.As(err, &qe) {
			retries[i] = qe.retryAfter
		}
	}
	decoded := make([]*spoolv1.JobSpec, len(specs))
	first := map[string]int{} // job id → the index that has it
	for i, raw := range specs {
		items[i].Index = i
		if int64(len(raw)) > g.cfg.MaxBody {
			items[i] = store.BatchItem{Index: i, ErrorCode: "invalid_argument",
				ErrorMessage: fmt.Sprintf("the spec is %d bytes: want at most %d (SPOOL_GATEWAY_MAX_BODY)", len(raw), g.cfg.MaxBody)}
			continue
		}
		spec, err := decodeSpec(raw)
		if err != nil {
			refuse(i, err)
			continue
		}
		if err := withTenant(spec, tenant, "the batch's"); err != nil {
			items[i] = store.BatchItem{Index: i, ErrorCode: "invalid_argument", ErrorField: "tenant", ErrorMessage: err.Error()}
			continue
		}
		if spec.GetId() == "" {
			spec.Id = batch + "-" + strconv.Itoa(i)
		}
		if j, dup := first[spec.GetId()]; dup {
			items[i] = store.BatchItem{Index: i, ErrorCode: "already_exists", ErrorField: "id",
				ErrorMessage: fmt.Sprintf("id %q is also the id of spec %d of the batch", spec.GetId(), j)}
			continue
		}
		first[spec.GetId()] = i
		decoded[i] = spec
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, batchSubmitters)
	for i, spec := range decoded {
		if spec == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			id, pub, err := g.submit(ctx, spec)
			if err != nil {
				refuse(i, err)
				others[i] = errors.Is(err, errOtherSpec)
				return
			}
			items[i].JobID, sent[i] = id, pub
		}()
	}
	wg.Wait()
	for i, pub := range sent {
		if pub {
			published = append(published, items[i].JobID)
		}
		if retries[i] > 0 && (retryAfter == 0 || retries[i] < retryAfter) {
			retryAfter = retries[i]
		}
	}
	return items, slices.Index(others, true), published, retryAfter
}

// splitBatch splits a batch body into its specs: a JSON array
// (application/json) or JSON Lines (application/x-ndjson, application/jsonl:
// one spec a line, blank lines skipped). Without a content type, a body
// that starts with '[' is an array and any other is JSON Lines.
func splitBatch(body []byte, contentType string) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	array := len(trimmed) > 0 && trimmed[0] == '['
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: %q: %w", errUnsupportedBatch, contentType, err)
		case mt == "application/json":
			array = true
		case mt == "application/x-ndjson" || mt == "application/jsonl" || mt == "application/json-lines" || mt == "application/x-jsonlines":
			array = false
		default:
			return nil, fmt.Errorf("%w: %q: want application/json (an array of job specs) or application/x-ndjson (one spec a line)",
				errUnsupportedBatch, contentType)
		}
	}
	if array {
		var specs []json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if err := dec.Decode(&specs); err != nil {
			return nil, fmt.Errorf("the body is not a JSON array of job specs ([{...}, {...}]; one job alone goes to POST /generate; "+
				"one spec a line is Content-Type application/x-ndjson): %w", err)
		}
		if dec.More() {
			return nil, errors.New("the body holds more than one JSON array: send one array of job specs")
		}
		return specs, nil
	}
	var specs []json.RawMessage
	for n, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' {
			return nil, fmt.Errorf("line %d is not a JSON object: JSON Lines hold one job spec ({...}) a line", n+1)
		}
		specs = append(specs, json.RawMessage(line))
	}
	return specs, nil
}

// newID is a fresh id: prefix ("b" for a batch, "g" for a job the
// gateway names) and 20 random base-32 digits.
func newID(prefix string) string { return ident.New(prefix, 20) }

// batchView is a batch's progress as GET /batches/{id} shows it.
type batchView struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	CreatedAt time.Time `json:"created_at"`
	Specs     int       `json:"specs"`    // in the batch
	Accepted  int       `json:"accepted"` // specs that became jobs
	Refused   int       `json:"refused"`  // specs refused, each with its error in jobs
	// States counts the jobs per state; "submitted" counts those the
	// dispatcher has not recorded yet.
	States      map[string]int  `json:"states"`
	Deleted     int             `json:"deleted"`      // jobs whose objects are deleted
	FramesDone  int64           `json:"frames_done"`  // made so far, over every job
	FramesTotal int64           `json:"frames_total"` // planned, over the bounded jobs
	Progress    float64         `json:"progress"`     // 0..1: the jobs' mean, a finished job counting 1
	Finished    bool            `json:"finished"`     // every job has ended
	Jobs        []batchItemView `json:"jobs"`         // by index: the job (id, state, progress) or the error
}

// getBatch shows a batch's progress: its jobs per state, frames made of
// those planned, its progress and whether every job has ended, and each
// spec's job (its state) or error.
func (g *Gateway) getBatch(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "batch")
	if !ok {
		return
	}
	tenant, ok := readScope(w, r)
	if !ok {
		return
	}
	b, err := g.store.GetBatch(r.Context(), id)
	if err == nil && tenant != "" && b.Tenant != tenant { // another tenant's is a missing one
		err = noBatch(b.ID)
	}
	if err != nil {
		fail(w, err)
		return
	}
	v := batchView{ID: b.ID, Tenant: b.Tenant, CreatedAt: b.CreatedAt, Specs: b.Jobs, States: map[string]int{"submitted": 0},
		Jobs: make([]batchItemView, len(b.Items)), Finished: true}
	for _, st := range store.JobStates {
		v.States[string(st)] = 0
	}
	sum := 0.0
	for i, it := range b.Items {
		iv := itemView(it)
		switch j := it.Job; {
		case it.JobID == "":
			v.Refused++
		case j == nil:
			v.Accepted++
			v.States["submitted"]++
			iv.State, iv.Progress, v.Finished = "submitted", new(float64), false
		default:
			v.Accepted++
			v.States[string(j.State)]++
			p := j.Progress
			if j.State.Terminal() {
				p = 1
			} else {
				v.Finished = false
			}
			sum += p
			iv.State, iv.Progress, iv.Deleted = string(j.State), &j.Progress, j.DeletedAt
			if j.DeletedAt != nil {
				v.Deleted++
			}
			v.FramesDone += j.FramesMade()
			v.FramesTotal += j.TotalFrames
		}
		v.Jobs[i] = iv
	}
	v.Progress = 1
	if v.Accepted > 0 {
		v.Progress = sum / float64(v.Accepted)
	}
	writeJSON(w, http.StatusOK, v)
}
