package spoolctl

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
)

// controls matches the terminal control sequences a board writes.
var controls = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// TestBoardPlainLines: off a terminal each row writes whole plain lines,
// after its label padded to the longest, as a meter does; rows shown from
// several goroutines never mix within a line.
func TestBoardPlainLines(t *testing.T) {
	var buf bytes.Buffer
	b := newBoard(&buf, "text to video", "talking head")
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			for k := range 3 {
				st := "running"
				if k == 2 {
					st = "succeeded"
				}
				b.show(i, progress{fraction: float64(k) / 2, done: k, total: 2, state: st, eta: time.Duration(2-k) * time.Second})
			}
		})
	}
	wg.Wait()
	b.close()
	out := buf.String()
	if strings.Contains(out, "\r") || strings.Contains(out, "\x1b") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("not plain lines: %q", out)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "text to video "):
			seen["text to video"]++
		case strings.HasPrefix(line, "talking head  "):
			seen["talking head"]++
		default:
			t.Fatalf("a line without its row's label: %q\n%s", line, out)
		}
	}
	for _, want := range []string{"text to video 100%  2/2 segments  succeeded  ETA 0s", "talking head  100%  2/2 segments  succeeded  ETA 0s"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no line %q:\n%s", want, out)
		}
	}
	if seen["text to video"] < 2 || seen["talking head"] < 2 {
		t.Errorf("rows' lines: %v\n%s", seen, out)
	}
}

// TestBoardOnTerminal: on a terminal (a pty of 60 columns) the rows are
// redrawn in place, each a bar beside its label, every drawing narrower
// than the terminal, and the last drawing of each row is its last state.
func TestBoardOnTerminal(t *testing.T) {
	const cols = 60
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
	b := newBoard(tty, "text to video", "talking head")
	b.show(0, progress{fraction: 0.25, done: 1, total: 4, state: "running", eta: 3 * time.Second, busy: "seg 1@a-worker-with-a-long-name/0"})
	b.show(1, progress{fraction: 0.5, done: 1, total: 2, state: "running", eta: time.Second})
	b.show(1, progress{fraction: 1, done: 2, total: 2, state: "wrote out/demo-talk.mp4"})
	b.show(0, progress{fraction: 1, done: 4, total: 4, state: "wrote out/demo.mp4"})
	b.close()
	tty.Close()
	out := strings.ReplaceAll(<-read, "\r\n", "\n")
	if got := strings.Count(out, "\x1b[2A"); got != 3 {
		t.Errorf("%d moves up over the two rows, want 3 (a drawing per show, the first in place): %q", got, out)
	}
	var last [2]string
	for _, line := range strings.Split(controls.ReplaceAllString(out, ""), "\n") {
		line = strings.TrimPrefix(line, "\r")
		if n := utf8.RuneCountInString(line); n >= cols {
			t.Errorf("a row of %d columns on a terminal of %d: %q", n, cols, line)
		}
		switch {
		case strings.HasPrefix(line, "text to video "):
			last[0] = line
		case strings.HasPrefix(line, "talking head  "):
			last[1] = line
		case line != "":
			t.Errorf("a line of no row: %q", line)
		}
	}
	for i, want := range []string{"text to video 100% |", "talking head  100% |"} {
		if !strings.HasPrefix(last[i], want) || !strings.Contains(last[i], "█") || !strings.Contains(last[i], "wrote") {
			t.Errorf("row %d last drawn %q, want %q…, a bar and the file written", i, last[i], want)
		}
	}
}
