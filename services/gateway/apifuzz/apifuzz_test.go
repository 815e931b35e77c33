package apifuzz_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolvideo/spool/libs/devstack/devstacktest"
	"github.com/spoolvideo/spool/libs/realpart"
)

func TestMain(m *testing.M) { os.Exit(devstacktest.Run(m)) }

var (
	long     = flag.Bool("long", false, "the long form (make fuzz): more examples, a random seed, stateful sequences too")
	examples = flag.Int("examples", 0, "examples an operation per phase; 0: 50, or 500 with -long")
	seed     = flag.Int64("seed", 0, "schemathesis' seed; 0: 1, or a random one with -long (printed, to replay a run)")
)

// The short form's bounds: 50 examples an operation and a fixed seed, so
// that `make test` sends the same requests every run (about 1,300, in half
// a minute on two cores, the stack started). The long one's (make fuzz):
// 500, a seed of its own and stateful sequences (minutes).
const (
	shortExamples = 50
	longExamples  = 500
	shortSeed     = 1
)

// adminKey is the harness's API key: an admin's, which newWorld creates,
// so that the fuzzer reaches every route and tenant.
var adminKey string

// authorization is the Authorization header of every request the fuzzer
// sends: the one place that says how the harness authenticates.
func authorization() string { return "Bearer " + adminKey }

// checks are schemathesis' checks of every answer, and ours (checks.py);
// config enables positive_data_acceptance too, where it applies. Not
// use_after_free: DELETE /jobs/{id} deletes a job's objects and keeps the
// job, its status and lineage, by design.
var checks = []string{
	"not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
	"response_headers_conformance", "negative_data_rejection", "missing_required_header",
	"ignored_auth", "unsupported_method", "allow_header_conformance", "ensure_resource_availability",
	"error_has_code_and_message",
}

// TestSchemathesis fuzzes every operation of the gateway's OpenAPI document
// against the gateway on the real stack, with a dispatcher and a stitcher
// (no worker: what the fuzzer submits stays queued), half of the ids it
// sends those of real objects (world). Any 5xx, any answer the document
// does not describe, or any error that is not a JSON object with a code
// and a message fails it, with schemathesis' report of the request that
// shows it (and a curl line to replay it).
func TestSchemathesis(t *testing.T) {
	st := schemathesis(t)
	w := newWorld(t)
	n, s := *examples, *seed
	phases := "examples,coverage,fuzzing"
	if n == 0 {
		n = shortExamples
		if *long {
			n = longExamples
		}
	}
	if s == 0 {
		s = shortSeed
		if *long {
			s = time.Now().UnixNano() % 1e9
		}
	}
	if *long {
		phases += ",stateful"
	}
	dir := t.TempDir() // schemathesis writes nothing into the tree
	conf := filepath.Join(dir, "schemathesis.toml")
	if err := os.WriteFile(conf, w.config(), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config-file", conf, "--no-color", "run", w.url + "/openapi.yaml", "--url", w.url,
		"--phases", phases, "--max-examples", strconv.Itoa(n), "--seed", strconv.FormatInt(s, 10),
		"--header", "Authorization: " + authorization(), "--max-redirects", "0", "--request-timeout", "30",
		"--generation-database", "none", "--max-failures", "50",
		// One worker: Debian's Python 3.11 races in ast.parse, which
		// Hypothesis calls, when several threads draw at once.
		"--workers", "1"}
	t.Logf("st %s", strings.Join(redact(args), " "))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, st, args...)
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SCHEMATHESIS_HOOKS="+filepath.Join(here, "checks.py"), "NO_COLOR=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start).Round(time.Second)
	if err != nil {
		replay := fmt.Sprintf("-seed %d -examples %d", s, n)
		if *long {
			replay += " -long"
		}
		t.Fatalf("schemathesis found what the API must not do (%s, %s; replay: go test ./services/gateway/apifuzz -run TestSchemathesis -args %s):\n%s",
			replay, took, replay, out)
	}
	t.Logf("schemathesis: %s in %s (seed %d, %d examples an operation, phases %s)", summaryOf(out), took, s, n, phases)
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}

// config is schemathesis' configuration. Half of the ids it sends are drawn
// from the world's (jobs, uploads and the batch, each where such an id
// goes) and from hostile ones (a NUL, non-ASCII, a dot-dot, a slash, one
// too long: Postgres refuses a NUL, so a lookup of one is a 503 unless the
// gateway refuses it first), and so are half of the preview files and a
// third of the tenants. Entries that break the document's pattern are sent
// only by negative cases, which must get a 4xx. Of a job's
// events only the first (its status) is read, since a queued job's never
// end. A request the document calls valid must succeed or be answered for
// the state of what it names (not found, deleted, conflicting, out of
// range), except where the document cannot state all that makes a body
// valid: a job spec's rules across fields, a file's content, a cursor
// only the API makes; and a batch is answered 207 with an error per spec,
// not 400, when its specs are invalid.
func (w world) config() []byte {
	list := func(vs ...string) string { // a TOML array of basic strings
		q := make([]string, len(vs))
		for i, v := range vs {
			var b strings.Builder
			for _, r := range v {
				if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
					fmt.Fprintf(&b, "\\u%04x", r)
				} else {
					b.WriteRune(r)
				}
			}
			q[i] = `"` + b.String() + `"`
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	on := ""
	for _, c := range checks {
		on += c + " = { enabled = true }\n"
	}
	hostile := []string{"\x00", "a\x00b", "é", "A", "..", "%2e%2e", "a/b", "a b", "-a", strings.Repeat("a", 65)}
	return fmt.Appendf(nil, `max-stream-events = 1

[dictionaries.jobs]
values = %s
[dictionaries.uploads]
values = %s
[dictionaries.batches]
values = %s
[dictionaries.files]
values = %s
[dictionaries.tenants]
values = %s

[parameters]
"path.id" = { dictionary = "jobs", probability = 0.5 }
"path.file" = { dictionary = "files", probability = 0.5 }
"query.tenant" = { dictionary = "tenants", probability = 0.3 }

[checks]
enabled = false
%s
positive_data_acceptance = { enabled = true, expected-statuses = ["2xx", "3xx", "401", "404", "409", "410", "416"] }

[[operations]]
include-path-regex = "^/uploads/"
parameters = { "path.id" = { dictionary = "uploads", probability = 0.5 } }

[[operations]]
include-path = "/batches/{id}"
parameters = { "path.id" = { dictionary = "batches", probability = 0.5 } }

[[operations]]
include-name-regex = "^(POST /generate|POST /batches|POST /uploads|POST /uploads/\\{id\\}/complete|GET /jobs)$"
checks = { positive_data_acceptance = { enabled = false } }

[[operations]]
include-name = "POST /batches"
checks = { negative_data_rejection = { enabled = false } }
`, list(append(w.jobs, hostile...)...), list(append(w.uploads, "up-\x00", "up-é")...), list(append(w.batches, hostile...)...),
		list(append(w.files, "..", "index.m3u8\x00", "007.m4s")...), list(append([]string{"default"}, hostile...)...), on)
}

// summaryOf is the last summary line of st's report, e.g. "Test cases:
// 1234 generated, 1234 passed".
func summaryOf(out []byte) string {
	m := regexp.MustCompile(`(?m)^\s*Test cases:\s*\n\s*(.*)$`).FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return "no summary"
	}
	return "test cases: " + strings.TrimSpace(string(m[len(m)-1][1]))
}

// redact hides the Authorization header's secret in args.
func redact(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "Authorization: ") {
			a = "Authorization: <redacted>"
		}
		out[i] = a
	}
	return out
}

// schemathesis is the pinned st, or a failure saying how to install it.
func schemathesis(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.work above the test's directory")
		}
	}
	st := filepath.Join(dir, ".spool", "apifuzz-venv", "bin", "st")
	if out, err := exec.Command(st, "--version").CombinedOutput(); err != nil {
		realpart.Missing(t, "schemathesis: %s: %v %s; run \"make fuzz-venv\" (part of \"make deps\")", st, err, out)
	}
	return st
}
