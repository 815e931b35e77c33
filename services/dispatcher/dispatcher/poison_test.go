package dispatcher_test

import (
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/store"
)

// TestMalformedBytesAreRejected: a submission whose bytes Postgres cannot
// hold as they are (not JSON, bytes that are not UTF-8, a \u0000) is
// rejected like any malformed one, with a message that is valid UTF-8,
// and never comes back for ever because its rejection cannot be recorded.
func TestMalformedBytesAreRejected(t *testing.T) {
	e := newEnv(t)
	e.start()
	for body, field := range map[string]string{
		"{\"prompt\": \xff}":                  "spec",
		"{\"prompt\":\"\xff\"}":               "spec",
		`{not json`:                           "spec",
		`{"prompt":"a\u0000b","durationS":1}`: "prompt",
	} {
		id := e.submit(body)
		j, _ := e.waitJob(id, "rejection", func(j store.Job, _ []store.Segment) bool { return j.State == store.JobRejected })
		if j.ErrorField != field || j.ErrorCode != "invalid_argument" || !strings.Contains(j.ErrorMessage, "not allowed") && !strings.Contains(j.ErrorMessage, "malformed") {
			t.Errorf("%q: field %q code %q message %q", body, j.ErrorField, j.ErrorCode, j.ErrorMessage)
		}
	}
}
