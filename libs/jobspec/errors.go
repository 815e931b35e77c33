package jobspec

import (
	"errors"
	"fmt"
)

// CodeInvalidArgument is the API error code of every validation failure.
const CodeInvalidArgument = "invalid_argument"

// ErrInvalid is matched by every *FieldError with errors.Is.
var ErrInvalid = errors.New("invalid job spec")

// FieldError says which field of a JobSpec is wrong, its value and what is
// allowed.
type FieldError struct {
	Code    string // API error code, CodeInvalidArgument
	Field   string // proto field name, e.g. "fps" or "timeline[2].from_s"
	Value   string // the offending value, quoted and shortened
	Allowed string // what the field accepts
}

// Error reads "fps: 500 is not allowed; allowed: 1..60; 0 means 24".
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s is not allowed; allowed: %s", e.Field, e.Value, e.Allowed)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field string, value any, allowed string) *FieldError {
	v := fmt.Sprintf("%v", value)
	if s, ok := value.(string); ok {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		v = fmt.Sprintf("%q", s)
	}
	return &FieldError{Code: CodeInvalidArgument, Field: field, Value: v, Allowed: allowed}
}
