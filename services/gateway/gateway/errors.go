package gateway

import (
	"encoding/json"
	"errors"
	"net/http"

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

// fail answers err with the status its kind calls for.
func fail(w http.ResponseWriter, err error) {
	var fe *jobspec.FieldError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_argument", Message: fe.Error(), Field: fe.Field})
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	}
}
