package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spoolvideo/spool/libs/blob"
	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/ident"
	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
)

// apiError is the JSON body of every error answer.
type apiError struct {
	Code    string `json:"code"`    // invalid_argument, not_found, unavailable, …
	Message string `json:"message"` // for a person: names the field and the allowed values
	Field   string `json:"field,omitempty"`
	// Reason says why an upload was refused (empty, not_media, truncated,
	// too_large, ...), for programs; only on refused uploads.
	Reason string `json:"reason,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

// pathID is the request's {id} of a job or a batch (what). An id that
// breaks ident.Rule names none, and is answered 404 not_found here, before
// Postgres is asked: it refuses text it cannot hold (a NUL, bytes that are
// not UTF-8) with an error, which would be a 503 for the client's input.
func pathID(w http.ResponseWriter, r *http.Request, what string) (string, bool) {
	id := r.PathValue("id")
	if !ident.Valid(id) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s %q: a %s id is %s", what, id, what, ident.Rule))
		return "", false
	}
	return id, true
}

// retryUnavailable is the Retry-After of a 503, in seconds.
const retryUnavailable = 5

// notReady answers 404 not_ready: what was asked for will exist, but not
// yet; retry after the given seconds.
func notReady(w http.ResponseWriter, retryAfter int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeError(w, http.StatusNotFound, "not_ready", msg)
}

// fail answers err with the status its kind calls for (see problem), and
// a 503 with Retry-After.
func fail(w http.ResponseWriter, err error) {
	status, e := problem(err)
	var qe *quotaError
	switch {
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryUnavailable))
	case errors.As(err, &qe):
		w.Header().Set("Retry-After", strconv.Itoa(qe.retryAfter))
	}
	writeJSON(w, status, e)
}

// problem is the status and body that answer err: 400 for a malformed spec
// or a bad field, 409 already_exists for an id that names a job with
// another spec, 429 resource_exhausted for a submission a quota refused,
// 404 for a missing row or object, and 503 only for what is left: a
// dependency that failed.
func problem(err error) (int, apiError) {
	var fe *jobspec.FieldError
	var qe *quotaError
	switch {
	case errors.As(err, &qe):
		return http.StatusTooManyRequests, apiError{Code: codeExhausted, Message: qe.Error()}
	case errors.As(err, &fe):
		return http.StatusBadRequest, apiError{Code: "invalid_argument", Message: fe.Error(), Field: fe.Field}
	case errors.Is(err, bus.ErrMalformedJob):
		return http.StatusBadRequest, apiError{Code: "invalid_argument", Message: err.Error(), Field: bus.MalformedField(err)}
	case errors.Is(err, errOtherSpec):
		return http.StatusConflict, apiError{Code: "already_exists", Message: strings.TrimPrefix(err.Error(), errOtherSpec.Error()+": "), Field: "id"}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, blob.ErrNotFound):
		return http.StatusNotFound, apiError{Code: "not_found", Message: err.Error()}
	default:
		return http.StatusServiceUnavailable, apiError{Code: "unavailable", Message: err.Error()}
	}
}
