package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/spoolvideo/spool/libs/blob"

	"github.com/spoolvideo/spool/libs/jobspec"
	"github.com/spoolvideo/spool/libs/store"
)

// apiError is the JSON body of every error answer.
type apiError struct {
	Code    string `json:"code"`    // invalid_argument, not_found, unavailable, …
	Message string `json:"message"` // for a person: names the field and the allowed values
	Field   string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

// retryUnavailable is the Retry-After of a 503, in seconds.
const retryUnavailable = 5

// notReady answers 404 not_ready: what was asked for will exist, but not
// yet; retry after the given seconds.
func notReady(w http.ResponseWriter, retryAfter int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeError(w, http.StatusNotFound, "not_ready", msg)
}

// fail answers err with the status its kind calls for: 400 for a bad
// field, 404 for a missing row or object, and 503 (with Retry-After) only
// for what is left: a dependency that failed.
func fail(w http.ResponseWriter, err error) {
	var fe *jobspec.FieldError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Message: fe.Error(), Field: fe.Field})
	case errors.Is(err, store.ErrNotFound), errors.Is(err, blob.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	default:
		w.Header().Set("Retry-After", strconv.Itoa(retryUnavailable))
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	}
}
