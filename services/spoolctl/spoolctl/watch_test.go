package spoolctl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/spoolvideo/spool/services/spoolctl/spoolctl"
)

// fakeGateway answers what submit --watch asks: the job is accepted, its
// events go from queued through three segments to succeeded, and a worker
// with a long name holds its segments.
func fakeGateway(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /generate", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"watched"}`)
	})
	mux.HandleFunc("GET /jobs/watched/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(event, data string) {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
			w.(http.Flusher).Flush()
		}
		send("status", `{"id":"watched","state":"queued","progress":0,"segments_done":0,"segments_total":3}`)
		for i := 1; i <= 3; i++ {
			state := "JOB_STATE_RUNNING"
			if i == 3 {
				state = "JOB_STATE_SUCCEEDED"
			}
			send("job", fmt.Sprintf(`{"state":%q,"progress":%g,"segments_done":%d,"segments_total":3}`, state, float64(i)/3, i))
		}
		send("status", `{"id":"watched","state":"succeeded","progress":1,"segments_done":3,"segments_total":3}`)
	})
	mux.HandleFunc("GET /models/info", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"workers":[{"id":"a-worker-with-a-rather-long-name/0","current_tasks":["watched/2/1"]}]}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// progressCommands are the commands that show progress, and what their
// last progress line says.
func progressCommands(t *testing.T) []struct {
	name string
	args []string
	last string
} {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	_ = os.WriteFile(spec, []byte(`{"prompt":"x","durationFrames":20,"windowFrames":13,"overlapFrames":4,"width":64,"height":64,"steps":2,"fps":24}`), 0o644)
	return []struct {
		name string
		args []string
		last string
	}{
		{"submit --watch", []string{"submit", "--watch", "--api", fakeGateway(t), spec}, "100%  3/3 segments  succeeded"},
		{"render --local", []string{"render", "--local", spec, "-o", filepath.Join(dir, "out.mp4")}, "100%  2/2 segments"},
	}
}

// TestProgressOffTerminal: when the progress goes to a pipe or a file, it
// is plain lines, each ended by a newline, with no carriage return, no
// line repeated, and the last saying the work is done.
func TestProgressOffTerminal(t *testing.T) {
	for _, c := range progressCommands(t) {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := spoolctl.Main(context.Background(), c.args, &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			out := stderr.String()
			if strings.Contains(out, "\r") || !strings.HasSuffix(out, "\n") {
				t.Fatalf("progress off a terminal is not plain lines: %q", out)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for i := 1; i < len(lines); i++ {
				if lines[i] == lines[i-1] {
					t.Errorf("line %d repeats the one before: %q", i+1, lines[i])
				}
			}
			if !strings.Contains(lines[len(lines)-1], c.last) {
				t.Errorf("last line %q, want it to say %q; all:\n%s", lines[len(lines)-1], c.last, out)
			}
		})
	}
}

// ansi matches the terminal control sequences a bar may write.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// TestProgressOnTerminal: on a terminal (a pty of 60 columns) the progress
// is one bar redrawn in place, the segments and the state beside it, and
// no drawing is wider than the terminal, so it never wraps.
func TestProgressOnTerminal(t *testing.T) {
	const cols = 60
	for _, c := range progressCommands(t) {
		t.Run(c.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatalf("a pty: %v", err)
			}
			defer ptmx.Close()
			if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: cols}); err != nil {
				t.Fatal(err)
			}
			read := make(chan string, 1)
			go func() { b, _ := io.ReadAll(ptmx); read <- string(b) }()
			var stdout bytes.Buffer
			err = spoolctl.Main(context.Background(), c.args, &stdout, tty)
			tty.Close()
			out := <-read // the pty's reader ends (EIO) once the last writer is closed
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out = ansi.ReplaceAllString(strings.ReplaceAll(out, "\r\n", "\n"), "")
			if !strings.Contains(out, "\r") || !strings.Contains(out, "|") || !strings.Contains(out, "█") {
				t.Fatalf("no bar redrawn in place: %q", out)
			}
			var last string
			for _, line := range strings.Split(out, "\n") {
				for _, frame := range strings.Split(line, "\r") {
					if n := utf8.RuneCountInString(strings.TrimRight(frame, " ")); n >= cols {
						t.Errorf("a drawing of %d columns on a terminal of %d: %q", n, cols, frame)
					}
					if strings.TrimSpace(frame) != "" {
						last = frame
					}
				}
			}
			if !strings.Contains(last, c.last[:4]) || !strings.Contains(last, c.last[6:]) {
				t.Errorf("the last drawing %q does not say %q", last, c.last)
			}
		})
	}
}
